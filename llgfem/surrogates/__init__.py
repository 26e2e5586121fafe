"""llgfem.surrogates."""
