"""Hydra config tree shipped with the package (so `fedpoison` runs from any directory)."""
