"""Run in a fresh process: install the Kiln zip the way a user does (Install from Disk), enable it,
and generate once. Prints one JSON line describing what landed in the scene."""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="kiln-install-")
zip_path = sys.argv[1]

import bpy  # noqa: E402

result = bpy.ops.extensions.package_install_files(repo="user_default", filepath=zip_path, enable_on_install=True)
module = "bl_ext.user_default.kiln"
enabled = module in bpy.context.preferences.addons
runtime = sys.modules[f"{module}.addon.blender.runtime"]
bpy.ops.kiln.generate(prompt="oak barrel")
finished = runtime.run_until_done(timeout=60)
obj = next((o for o in bpy.data.objects if o.get("kiln_prompt") == "oak barrel"), None)
print(json.dumps({
    "install": sorted(result),
    "enabled": enabled,
    "finished": finished,
    "object": obj.name if obj else None,
    "collection": obj.users_collection[0].name if obj else None,
    "faces": len(obj.data.polygons) if obj else 0,
    "installed_files": sorted(os.listdir(os.path.dirname(sys.modules[module].__file__))),
}))
