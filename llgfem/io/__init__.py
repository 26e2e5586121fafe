"""llgfem.io."""
