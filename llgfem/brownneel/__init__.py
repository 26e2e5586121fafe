"""llgfem.brownneel."""
