"""Images and models as plain numpy data, shared by every layer: PNG, raster helpers, GLB, silhouettes,
the software preview, the bitmap font and material words.

Nothing here imports `bpy` or belongs to one backend: the Blender layer, the local engine, remote
backends and the sandbox all read and write the same formats through these modules.
"""
