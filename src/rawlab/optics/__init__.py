"""Optics: lens corrections (DNG WarpRectilinear and FixVignetteRadial opcodes)."""
