# mypy: disable-error-code="union-attr,attr-defined,override,arg-type"
"""Per-scene Kiln settings (mode, backend, prompt), stored in the .blend like any scene setting."""

from __future__ import annotations

import bpy

from ..addon.backends import AVAILABLE

_MODE_ITEMS = [
    ("DRAFT", "Draft", "Fastest usable shape, for ideation", "MESH_ICOSPHERE", 0),
    ("PRODUCTION", "Production", "Finished assets from queued batches", "OUTLINER_COLLECTION", 1),
]
_TARGET_ITEMS = [
    ("GAME", "Game", "Face budget, LODs, power-of-two textures"),
    ("FILM", "Film", "Keep detail, no LODs"),
]


def _backend_items(self: bpy.types.PropertyGroup, context: bpy.types.Context | None) -> list[tuple[str, str, str]]:
    return [(info.name, info.label, info.description) for info in AVAILABLE]


class KILN_SceneSettings(bpy.types.PropertyGroup):
    mode: bpy.props.EnumProperty(name="Mode", items=_MODE_ITEMS, default="DRAFT")  # type: ignore[valid-type]
    backend: bpy.props.EnumProperty(name="Backend", items=_backend_items)  # type: ignore[valid-type]
    target: bpy.props.EnumProperty(name="Target", items=_TARGET_ITEMS, default="GAME")  # type: ignore[valid-type]
    prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Prompt", description="What to generate, e.g. 'wooden crate with iron bands'"
    )
    options: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Options", description="Variants to generate for this prompt, to choose from", default=1, min=1, max=4
    )
    seed: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Seed", description="0 picks a new random seed for every generation", default=0, min=0
    )


classes = (KILN_SceneSettings,)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.kiln = bpy.props.PointerProperty(type=KILN_SceneSettings)


def unregister() -> None:
    del bpy.types.Scene.kiln
    _unregister()
