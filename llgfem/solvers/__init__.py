"""llgfem.solvers."""
