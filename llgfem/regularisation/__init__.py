"""llgfem.regularisation."""
