"""llgfem.rom."""
