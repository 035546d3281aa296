"""Kiln: AI 3D generation for Blender, with fast drafts and batch production.

Registration wiring only; the engine lives in `addon/`, the Blender classes in `operators/` and `ui/`.
"""

from . import operators, ui
from .addon.blender import runtime


def register() -> None:
    ui.register()
    operators.register()
    runtime.register(__package__)


def unregister() -> None:
    # Stop the engine first, so no timer fires into classes that are being removed.
    runtime.unregister()
    operators.unregister()
    ui.unregister()
