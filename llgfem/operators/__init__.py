"""llgfem.operators."""
