"""Results never interrupt: a landing result leaves the artist's mode, selection and active object alone.

Blender's glTF importer switches Edit Mode (or Sculpt, or a paint mode) to Object Mode, then selects and
activates what it imported; `object.join` and friends change the selection too. The artist would feel
that as Kiln taking over their work. Two layers keep it from happening:

- `can_land_now()`: the pump brings results into the scene only while the artist is in Object Mode and
  not in the middle of an interactive operator (a grab, a box select, a fly/walk navigation). In any
  other state the results wait, downloaded and journaled, and land as soon as the artist leaves it.
  Waiting was chosen over importing "without a mode switch" because the glTF importer calls
  `object.mode_set` itself on both Blender 4.2 and 5.0, whatever context it is given, and a mode switch
  out of Edit Mode and back flushes the artist's edit mesh and splits their undo history.
- `keep_artist_state()`: whatever runs inside it (import, join, append, placement), the view layer's
  active object, the selection, the active collection and the mode are put back afterwards. This is
  what every landing path uses (the pump's import, a re-import, the workers' append), so even a path
  that lands outside the pump's wait (a resume, a re-import button) leaves the artist where they were.

Both work with and without a window (the `bpy` module and `blender -b` have no real one).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import bpy

_log = logging.getLogger(__name__)

INTERACTIVE_PREFIXES = ("TRANSFORM_OT_", "VIEW3D_OT_", "GIZMOGROUP_OT_")
"""Modal operators the artist is driving with the mouse right now (grab/rotate/scale, box select,
fly/walk, gizmo drags): a result landing mid-gesture would change what they are acting on. Other modal
operators (an add-on's long-lived handler, a render) do not hold results back, or they might never land."""


def _interactive_operator() -> str | None:
    """The bl_idname of an interactive modal operator running in any window, or None."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return None
    for window in wm.windows:
        for operator in getattr(window, "modal_operators", ()):  # present on 4.2 and 5.0
            if operator.bl_idname.startswith(INTERACTIVE_PREFIXES):
                return str(operator.bl_idname)
    return None


def why_not_landing() -> str | None:
    """Why results are held back right now (for the queue to say so), or None when they can land."""
    mode = bpy.context.mode
    if mode != "OBJECT":
        return f"waiting for you to leave {mode.replace('_', ' ').title()}"
    operator = _interactive_operator()
    if operator is not None:
        return "waiting for the current tool to finish"
    return None


def can_land_now() -> bool:
    """True when a result may come into the scene without interrupting the artist (see the module)."""
    return why_not_landing() is None


@dataclass
class ArtistState:
    """What the artist had when a result started to land."""

    mode: str = "OBJECT"
    """The active object's mode (`Object.mode`, the identifier `object.mode_set` takes)."""
    active: bpy.types.Object | None = None
    selected: list[bpy.types.Object] = field(default_factory=list)
    in_mode: list[bpy.types.Object] = field(default_factory=list)
    """The objects being edited together (multi-object Edit Mode), empty in Object Mode."""
    active_collection: str | None = None


def record() -> ArtistState:
    context = bpy.context
    view_layer = context.view_layer
    if view_layer is None:
        return ArtistState()
    active = view_layer.objects.active
    mode = str(active.mode) if active is not None else "OBJECT"
    in_mode = [o for o in view_layer.objects if o.mode == mode] if mode != "OBJECT" else []
    layer_collection = view_layer.active_layer_collection
    return ArtistState(mode=mode, active=active, selected=[o for o in view_layer.objects if o.select_get()],
                       in_mode=in_mode, active_collection=layer_collection.name if layer_collection else None)


def _alive(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The object if it still exists (a join may have removed it), else None."""
    if obj is None:
        return None
    try:
        obj.name  # noqa: B018  # raises ReferenceError once the object was removed
    except ReferenceError:
        return None
    return obj


def restore(state: ArtistState) -> None:
    """Put back what `record` saw: mode first (entering a mode changes the selection), then selection,
    active object and active collection."""
    view_layer = bpy.context.view_layer
    if view_layer is None:
        return
    active = _alive(state.active)
    if state.mode != "OBJECT" and active is not None and active.mode != state.mode:
        _reenter_mode(view_layer, active, state)
    wanted = {o.as_pointer() for o in (_alive(s) for s in state.selected) if o is not None}
    for obj in view_layer.objects:
        selected = obj.as_pointer() in wanted
        if obj.select_get() != selected:
            # RuntimeError: hidden from the view layer meanwhile, so it cannot be (de)selected.
            with contextlib.suppress(RuntimeError):
                obj.select_set(selected)
    if view_layer.objects.active != active:
        view_layer.objects.active = active
    if state.active_collection is not None:
        layer_collection = _find_layer_collection(view_layer.layer_collection, state.active_collection)
        if layer_collection is not None and view_layer.active_layer_collection != layer_collection:
            view_layer.active_layer_collection = layer_collection


def _reenter_mode(view_layer: bpy.types.ViewLayer, active: bpy.types.Object, state: ArtistState) -> None:
    """Something switched the artist out of their mode (the glTF importer does): switch back, with the
    same objects in it. Only a landing outside the pump's wait gets here."""
    others = [o for o in (_alive(x) for x in state.in_mode) if o is not None]
    view_layer.objects.active = active
    for obj in view_layer.objects:
        with contextlib.suppress(RuntimeError):
            obj.select_set(obj in others or obj == active)
    try:
        with bpy.context.temp_override(active_object=active, object=active):
            bpy.ops.object.mode_set(mode=state.mode)  # type: ignore[arg-type]  # read from Object.mode
    except (RuntimeError, TypeError) as exc:
        _log.warning("could not return to %s on %s after a result landed: %s", state.mode, active.name, exc)


def _find_layer_collection(root: bpy.types.LayerCollection, name: str) -> bpy.types.LayerCollection | None:
    if root.name == name:
        return root
    for child in root.children:
        found = _find_layer_collection(child, name)
        if found is not None:
            return found
    return None


@contextlib.contextmanager
def keep_artist_state() -> Iterator[ArtistState]:
    """Run a landing (import, join, append, placement) and leave mode, selection, active object and
    active collection as the artist had them, also when the landing fails."""
    state = record()
    try:
        yield state
    finally:
        try:
            restore(state)
        except ReferenceError as exc:  # a bug guard: never let the restore hide the landing's own error
            _log.warning("could not restore the selection after a result landed: %s", exc)
