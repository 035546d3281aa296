"""Headless batches without Blender: `manifest` reads and checks a manifest, `plan` decides folders,
budget and start time, `report` adds up a run and picks its exit code, `cli` is the command line.

The Blender half (`addon/blender/batch_run.py`) is passed to `cli.main(argv, runner=...)` by the two
entry points, `scripts/kiln_batch.py` and the add-on's `blender -c kiln batch`: nothing here imports
addon.blender.
"""
