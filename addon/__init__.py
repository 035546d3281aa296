"""Kiln's engine: everything that is not a Blender UI class.

Nothing in this package imports `bpy` except `addon.blender`; a test enforces it, so the engine runs
and is tested under plain Python.
"""
