"""Kiln loads as an installed extension, registers, unregisters and re-registers cleanly."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import ModuleType

from conftest import ADDON_MODULE, disable_kiln, enable_kiln


def kiln_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kiln-") and t.is_alive()]


KILN_CLASSES = ("KILN_PT_generate", "KILN_PT_queue", "KILN_OT_generate")


def test_loaded_as_bl_ext_package_with_working_preferences(kiln: ModuleType) -> None:
    import bpy

    assert kiln.__name__ == ADDON_MODULE
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    assert prefs.draft_reserved_slots == 1
    assert hasattr(bpy.ops.kiln, "generate")
    assert all(hasattr(bpy.types, name) for name in KILN_CLASSES)
    assert hasattr(bpy.types.Scene, "kiln")
    user_folder = bpy.utils.extension_path_user(ADDON_MODULE, path="journal")
    assert user_folder.endswith("journal")


def test_unregister_leaves_nothing_and_reregister_works(kiln: ModuleType) -> None:
    import bpy

    runtime = sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"]
    disable_kiln()
    try:
        assert not any(hasattr(bpy.types, name) for name in KILN_CLASSES)
        assert not hasattr(bpy.types.Scene, "kiln")
        assert not runtime.is_running()
        # Threads end promptly: disabling mid-batch must neither hang nor leave workers behind.
        deadline = time.monotonic() + 3.0
        while kiln_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kiln_threads() == []
    finally:
        enable_kiln()
    assert all(hasattr(bpy.types, name) for name in KILN_CLASSES)
    runtime = sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"]
    assert runtime.is_running()
    bpy.ops.kiln.generate(prompt="wooden crate")
    assert runtime.run_until_done(timeout=30)
    assert "draft_wooden_crate_001" in bpy.data.objects


def test_results_go_to_the_cache_folder_from_the_preferences(kiln: ModuleType, tmp_path: object) -> None:
    import bpy

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    runtime = sys.modules[f"{ADDON_MODULE}.addon.blender.runtime"]
    prefs.cache_folder = str(tmp_path)  # takes effect at once
    try:
        bpy.ops.kiln.generate(prompt="crate")
        assert runtime.run_until_done(timeout=30)
        job = runtime.scheduler().views()[-1]
        assert job.files["model"].startswith(str(tmp_path)) and Path(job.files["model"]).is_file()
    finally:
        prefs.cache_folder = ""
