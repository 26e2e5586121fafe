"""llgfem.forms."""
