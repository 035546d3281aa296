"""The scene, read as plain data for the request builder: typed accessors for Kiln's scene settings,
the names already taken, the reference images selected in the viewport, and why a button cannot run
now (the operators' poll() and the panel's reason labels read the same sentence)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import bpy
from mathutils import Vector

from .. import preflight
from ..backends import registry
from ..jobs import Mode, Priority
from ..requests import PanelRequest, PreparedInput, Request, view_facing
from ..validation import InputError
from . import runtime
from .images import PreparedImage, prepare_image
from .results import other_options, result_of, results_of

_log = logging.getLogger(__name__)


def scene_settings(scene: bpy.types.Scene | None) -> Any:
    """Kiln's settings on `scene` (the `KILN_SceneSettings` group), or an InputError saying why not."""
    if scene is None:
        raise InputError("There is no scene")
    return scene.kiln  # type: ignore[attr-defined]  # registered by ui/props.py


def panel_request(scene: bpy.types.Scene | None, **overrides: Any) -> PanelRequest:
    """What the panel asks for right now, as a frozen PanelRequest (`overrides` replace fields)."""
    settings = scene_settings(scene)
    values: dict[str, Any] = {
        "mode": Mode.PRODUCTION if settings.mode == "PRODUCTION" else Mode.DRAFT,
        "backend": str(settings.backend),
        "target": str(settings.target).lower(),
        "face_budget": int(settings.face_budget),
        "texture_size": int(settings.texture_size),
        "finish_preset": str(settings.finish_preset),
        "options": int(settings.options),
        "seed": int(settings.seed),
        "negative_prompt": " ".join(str(settings.negative_prompt).split()),
        "batch_name": str(settings.batch_name),
        "priority": Priority[str(settings.priority)],
        "budget": float(settings.budget) or None,
        "start_in_hours": float(settings.start_in_hours),
    }
    values.update(overrides)
    return PanelRequest(**values)


def taken_names() -> set[str]:
    """Every name a new result or batch must not reuse: objects, collections, batches and queued results."""
    names = {o.name for o in bpy.data.objects} | {c.name for c in bpy.data.collections}
    if runtime.is_running():
        scheduler = runtime.scheduler()
        names |= set(scheduler.batches)
        names |= {job.spec.name for job in scheduler.views() if job.spec.name}
    return names


def affordability(request: Request) -> preflight.Affordable | None:
    """How much of `request` the account pays for now: its balance as last read, less what Kiln has queued
    or in flight there, less the reserve for drafts when it is production. None: no balance is known
    (a backend without one, or not read yet), so nothing is held back here; the scheduler still keeps the
    reserve once it reads the balance."""
    if not request.specs or not runtime.is_running():
        return None
    spec = request.specs[0]
    scheduler = runtime.scheduler()
    backend = scheduler.backends.get(spec.backend)
    pool = scheduler.credit_pool(spec.backend)
    if backend is None or pool is None or pool.balance is None:
        return None
    left = pool.balance - pool.spent_since_read - pool.committed
    return preflight.affordable([backend.estimate_credits(s) for s in request.specs], left, pool.reserve,
                                draft=spec.mode is Mode.DRAFT)


def queue(request: Request, only_affordable: bool = False) -> list[str]:
    """Hand a built request to the engine; returns the error messages of jobs that could not be queued.
    A request the balance cannot pay for is not queued at all (its shortfall is the message), or, with
    `only_affordable`, only its leading jobs that fit are (`request.specs` is cut to them, so the caller
    reports what was really queued). Input the backend cannot start from (a text prompt on an image-only
    backend) queues nothing."""
    refused = next(filter(None, (registry.input_problem(s.backend, s.kind.value) for s in request.specs)), None)
    if refused is not None:
        return [refused]
    fit = affordability(request)
    if fit is not None and not fit.fits:
        if not only_affordable or fit.count == 0:
            return [f"Not queued: {fit.message()}"]
        del request.specs[fit.count :]
    scheduler = runtime.scheduler()
    if request.batch is not None:
        scheduler.add_batch(request.batch)
    jobs = scheduler.add_many(request.specs)
    return [job.error.message for job in jobs if job.error is not None]


def credit_text(backend: str) -> str:
    """"Available for production: 40 / reserved for drafts: 20" while a reserve is set and a balance is
    known; empty otherwise (the balance line says the rest)."""
    if not runtime.is_running():
        return ""
    pool = runtime.scheduler().credit_pool(backend)
    if pool is None or pool.balance is None or pool.reserve <= 0:
        return ""
    return f"Available for production: {max(0.0, pool.available):g} / reserved for drafts: {pool.reserve:g}"


# ---------------------------------------------------------------------------------------------- why not
# poll() cannot see operator properties, so these read only the scene, the selection and the engine:
# each returns the sentence the artist reads (tooltip and panel label), or None when the button can run.
NO_VARIATIONS = "Add at least one variation to the list"
NO_BASE_PROMPT = "Type the base prompt that every variation adds to"
NO_PARTS = "Add the parts to the list first (head, torso, legs …)"


@functools.lru_cache(maxsize=64)
def prompt_findings(prompt: str, negative_prompt: str = "", backend: str = "", mode: str = "draft",
                    target: str = "game") -> tuple[preflight.Finding, ...]:
    """The pre-flight of a prompt, cached by its input: draw() and poll() ask on every redraw, and only a
    changed prompt, backend, mode or target costs a check (a few regular expressions)."""
    limits, label = preflight.limits_for(backend)
    return tuple(preflight.check_prompt(prompt, limits, mode=mode, target=target,
                                        negative_prompt=negative_prompt, backend_label=label))


def scene_prompt_findings(settings: Any) -> tuple[preflight.Finding, ...]:
    """The Generate panel's prompt as the panel's settings would send it."""
    return prompt_findings(str(settings.prompt), str(settings.negative_prompt), str(settings.backend),
                           str(settings.mode).lower(), str(settings.target).lower())


def prompt_problem(prompt: str, negative_prompt: str = "", backend: str = "") -> str | None:
    """What the operator's own check would refuse in these prompts (a backend that takes no text at all,
    empty, too long for the backend), said before the click."""
    refused = registry.input_problem(backend, "text") if backend else None
    if refused is not None:
        return refused
    hard = preflight.errors(prompt_findings(" ".join(prompt.split()), " ".join(negative_prompt.split()), backend))
    return hard[0].reason if hard else None


def variations_problem(settings: Any) -> str | None:
    """Why Queue Variations cannot run with the Batch panel's lists as they are."""
    base = " ".join(str(settings.batch_base).split())
    variations = [item.text for item in settings.variations if item.text.strip()]
    if not variations:
        return NO_VARIATIONS
    if not base:
        return NO_BASE_PROMPT
    return next(filter(None, (prompt_problem(f"{base} {v}", settings.negative_prompt, str(settings.backend))
                              for v in variations)), None)


def parts_problem(settings: Any) -> str | None:
    """Why Generate Parts cannot run with the Batch panel's lists as they are."""
    base = " ".join(str(settings.batch_base).split())
    parts = [item.text for item in settings.parts if item.text.strip()]
    if not parts:
        return NO_PARTS
    return next(filter(None, (prompt_problem(f"{base} {p}", "", str(settings.backend)) for p in parts)), None)


def engine_problem() -> str | None:
    if not runtime.is_running():
        return "Kiln's engine is not running; re-enable the add-on"
    return runtime.read_only() or None


def backend_problem(name: str) -> str | None:
    """Why the backend `name` cannot take new work now: engine stopped, online access off, no key, an
    endpoint the key must not go to. Known before any click, so the buttons are grey instead."""
    problem = engine_problem()
    if problem is not None:
        return problem
    info = registry.find(name)
    if info is None:
        return f"Backend '{name}' is not available"
    if info.needs_network and not bpy.app.online_access:
        return (f"{info.label} needs the internet, but Blender's online access is off "
                "(Preferences ▸ System ▸ Network); the Local backend works offline")
    error = runtime.backend_error(info.name)
    return error.message if error is not None else None


def selected_results(context: bpy.types.Context) -> list[bpy.types.Object]:
    """The Kiln results behind the selection, once each, whichever part of an asset was clicked.

    A hidden object (LOD1…) cannot be selected: clicked in the Outliner it only becomes active, so the
    active object counts too when it is hidden."""
    clicked = list(context.selected_objects or ())
    active = context.active_object
    if active is not None and not active.visible_get() and active not in clicked:
        clicked.append(active)
    found: list[bpy.types.Object] = []
    for obj in clicked:
        found += [r for r in results_of(obj) if r not in found]
    return found


def selection_problem(context: bpy.types.Context) -> str | None:
    """Finish and Export: something finishable is selected."""
    results = selected_results(context)
    if not results:
        return "Select one or more Kiln results"
    if all(o.get("kiln_finished") for o in results):
        return "The selected results are already finished"
    return None


def export_problem(context: bpy.types.Context) -> str | None:
    return None if selected_results(context) else "Select one or more Kiln results"


def promote_problem(context: bpy.types.Context) -> str | None:
    results = selected_results(context)
    if not results:
        return "Select one or more Kiln drafts"
    if not any(o.get("kiln_mode") == "draft" for o in results):
        return "Select one or more Kiln drafts: the selected results are Production already"
    return None


def keep_option_problem(context: bpy.types.Context) -> str | None:
    kept = result_of(context.active_object)
    if kept is None:
        return "Select the Kiln result to keep"
    if not other_options(kept):
        return "This prompt has no other option to reject (Options above 1 makes variants to choose from)"
    return None


# ---------------------------------------------------------------------------------------------- references
def is_reference_image(obj: bpy.types.Object) -> bool:
    """An image empty (Add ▸ Image ▸ Reference/Background) showing an image with a file behind it."""
    return (obj.type == "EMPTY" and obj.empty_display_type == "IMAGE"
            and isinstance(obj.data, bpy.types.Image))


def reference_view(obj: bpy.types.Object) -> str | None:
    """front/left/back/right from the direction the reference's picture faces (its local +Z in world space)."""
    facing = obj.matrix_world.to_3x3() @ Vector((0.0, 0.0, 1.0))
    facing.normalize()
    return view_facing((facing.x, facing.y, facing.z))


def image_file(image: bpy.types.Image) -> Path:
    """The file behind an image data-block; packed or generated images are written to a file first."""
    if image.filepath and not image.packed_file:
        path = Path(bpy.path.abspath(image.filepath))
        if path.is_file():
            return path
    folder = runtime.inputs_folder() / "from_blend"
    folder.mkdir(parents=True, exist_ok=True)
    packed = image.packed_file
    if packed is not None:
        # The file as it was packed, written out as it is: the pre-flight reads its header (type, size)
        # before anything decodes it, as for a file on disk. Asking Blender for its size would decode
        # it first, and a packed decompression bomb would take all the memory.
        original = Path(bpy.path.basename(image.filepath) or image.name)
        path = folder / f"{bpy.path.clean_name(original.stem)}{original.suffix.lower() or '.png'}"
        path.write_bytes(bytes(packed.data))
        return path
    size: Any = image.size  # a generated or painted image: its pixels are already in memory
    if not image.has_data and int(size[0]) == 0:
        raise InputError(f"Image '{image.name}' has no pixels and no file")
    path = folder / f"{bpy.path.clean_name(image.name)}.png"
    copy = image.copy()
    if copy is None:
        raise InputError(f"Image '{image.name}' could not be copied to a file")
    try:
        copy.filepath_raw = str(path)
        copy.file_format = "PNG"
        copy.save()
    finally:
        bpy.data.images.remove(copy)
    return path


def prepare_for(path: str | Path, backend: str) -> PreparedImage:
    """An image read, downscaled and pre-flighted for `backend` (its hard errors raise InputError)."""
    limits, label = preflight.limits_for(backend)
    return prepare_image(path, runtime.inputs_folder(), limits=limits, backend_label=label)


def prepare_reference(obj: bpy.types.Object, view: str = "image", backend: str = "local"
                      ) -> tuple[PreparedInput, list[preflight.Finding]]:
    """A selected reference empty as a request input: read and checked by Blender, named after the empty."""
    image: Any = obj.data  # the stubs type Object.data without Image, which image empties hold
    if not isinstance(image, bpy.types.Image):
        raise InputError(f"'{obj.name}' shows no image")
    prepared = prepare_for(image_file(image), backend)
    return (PreparedInput(prepared.source, prepared.prepared, view=view, label=obj.name, beside=(obj.name,)),
            prepared.findings)


def camera_subjects(scene: bpy.types.Scene) -> tuple[str, ...]:
    """The visible mesh objects whose bounds' centre the active camera sees: what a capture shows, and
    what its result should stand beside (not inside)."""
    from bpy_extras.object_utils import world_to_camera_view

    camera = scene.camera
    if camera is None:
        return ()
    names = []
    for obj in scene.objects:
        if obj.type != "MESH" or not obj.visible_get() or obj.get("kiln_job_id"):
            continue
        corners = [obj.matrix_world @ Vector(corner) for corner in obj.bound_box]
        centre = sum(corners, Vector()) / 8.0
        view = world_to_camera_view(scene, camera, centre)
        if 0.0 <= view.x <= 1.0 and 0.0 <= view.y <= 1.0 and view.z > 0.0:
            names.append(obj.name)
    return tuple(names)
