"""The one request builder: panel settings, a manifest asset or a promotion → (BatchSpec, [JobSpec]).

Every entry point (each operator, the panel's cost estimate, Promote and the headless batch) comes
through here, so what Draft and Production mean, how results are named and how seeds are chosen is
decided in one place:

- Draft: no batch. Results land in Kiln Drafts as `draft_<subject>_001`, options as `_v2`.
- Production: a batch of its own (`gen_<subject>_01` from a button; the manifest's name headless),
  finished by the chosen preset within the face budget and texture size, in its own collection.

Nothing here touches Blender: operators turn the scene into a `PanelRequest` first
(`addon/blender/panel.py`), and images arrive already prepared.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .jobs import PREVIEW_TASK_ID, TITLE, BatchSpec, JobKind, JobSpec, Mode, Priority
from .modes import PREPARED_IMAGES, REFINE_PROMOTES, VIEWS, mode_params, target_params, theme_params
from .naming import asset_name, draft_name, next_batch_name, slug
from .presets import PRESETS, FinishPreset, Theme
from .validation import joined_prompt

SEED_RANGE = 2**31 - 1
"""Seeds are integers in 0..2^31-1: they live in Blender's 32-bit int properties. A backend with a smaller
range maps them with its own documented modulo."""

REPLACES = "replaces"
"""Spec parameter: the draft object a promoted job replaces when it lands."""
BESIDE = "beside"
"""Spec parameter: names of the objects a result should land next to (its references, the captured
subject)."""
CAPTURE = "capture"
"""Spec parameter of a camera job: `camera` (object name) and `objects` (names of what it captured), so
the result stands beside its subject, facing the camera; for the local engine also `depth` (below)."""
CAPTURE_DEPTH = "depth"
"""Key in `capture`: the depth the camera measured (a `.npz` of `backends/local/depth.py`). Only the local
engine gets it; it builds the subject's solid at its real size and world orientation from it, so that
result keeps the subject's heading instead of being turned to face the camera."""

DEFAULT_PRESET = "game"
TEXTURE_SIZES = (512, 1024, 2048, 4096)


@dataclass(frozen=True)
class PanelRequest:
    """The panel's settings as plain data: what the artist asked for, read once from the scene."""

    mode: Mode = Mode.DRAFT
    backend: str = "local"
    target: str = "game"
    face_budget: int = 5000
    texture_size: int = 1024
    finish_preset: str = DEFAULT_PRESET
    options: int = 1
    seed: int = 0
    negative_prompt: str = ""
    batch_name: str = ""
    priority: Priority = Priority.NORMAL
    budget: float | None = None
    start_in_hours: float = 0.0


@dataclass(frozen=True)
class PreparedInput:
    """An image the artist chose, already read and checked by Blender: the original path (what cloud
    backends upload) and the prepared array (what the local engine reads)."""

    source: str
    prepared: str
    view: str = "image"
    """front/left/back/right for a multiview job; "image" otherwise."""
    label: str = ""
    """What the result is named after (the reference object's or file's name)."""
    beside: tuple[str, ...] = ()
    """Objects the result should land next to."""


@dataclass
class Request:
    """What one button press (or one manifest asset) queues."""

    batch: BatchSpec | None
    specs: list[JobSpec] = field(default_factory=list)


def clamp_seed(seed: int) -> int:
    """Any integer → 0..2^31-1 (stable: the same input always maps to the same seed)."""
    return int(seed) % SEED_RANGE


def new_seed() -> int:
    return random.randrange(1, SEED_RANGE)


def derived_seed(base_seed: int, identity: str) -> int:
    """A seed from a job's identity (its asset name and request), so inserting an asset in a manifest
    changes no other job's seed, and every seed fits Blender's 32-bit properties."""
    digest = hashlib.sha256(f"{int(base_seed)}:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_RANGE


# ---------------------------------------------------------------------------------------------- batches
def finish_for(panel: PanelRequest) -> FinishPreset:
    """The chosen preset, held to the panel's face budget (Game) and texture size."""
    base = PRESETS.get(panel.finish_preset) or PRESETS[DEFAULT_PRESET]
    overrides: dict[str, Any] = {}
    if panel.target == "game" and panel.face_budget > 0:
        overrides["face_budget"] = int(panel.face_budget)
    if panel.texture_size > 0 and base.texture_size:
        overrides["texture_size"] = int(panel.texture_size)
    if panel.target == "film":
        overrides["lod_ratios"] = ()
    return replace(base, **overrides) if overrides else base


def panel_batch(panel: PanelRequest, subject: str, taken: Iterable[str], prefix: str = "gen") -> BatchSpec | None:
    """A Production press is a batch of its own, named by the convention (`gen_barrel_01`); a Draft has none."""
    if panel.mode is not Mode.PRODUCTION:
        return None
    return named_batch(panel, subject, taken, prefix)


def named_batch(panel: PanelRequest, subject: str, taken: Iterable[str], prefix: str) -> BatchSpec:
    """A batch in any mode (variations and parts always share one collection); only Production is finished."""
    taken_set = set(taken)
    if panel.batch_name.strip():
        name = slug(panel.batch_name)
        if name in taken_set:
            name = next_batch_name(name, taken_set)
    else:
        name = next_batch_name(f"{prefix}_{slug(subject, 24)}", taken_set)
    return BatchSpec(
        name,
        mode=panel.mode,
        backend=panel.backend,
        priority=panel.priority,
        start_at=time.time() + panel.start_in_hours * 3600 if panel.start_in_hours else None,
        budget=panel.budget or None,
        finish=finish_for(panel) if panel.mode is Mode.PRODUCTION else None,
        target=panel.target,
    )


def _params(mode: Mode, backend: str, target: str = "game", face_budget: int = 0,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the mode and target mean for the backend, plus the request's own parameters (empty ones dropped)."""
    params = mode_params(backend, mode, target_params(mode, target, face_budget))
    params.update({k: v for k, v in (extra or {}).items() if v not in (None, (), "")})
    return params


def _panel_params(panel: PanelRequest, backend: str | None = None, extra: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    return _params(panel.mode, backend or panel.backend, panel.target, panel.face_budget, extra)


class _Names:
    """Hands out result names by the convention, skipping every name already taken (objects,
    collections, batches, queued jobs), so nothing ends up as `….001`."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.taken = set(taken)

    def draft(self, subject: str, options: int) -> list[str]:
        number = 0
        while True:
            base = draft_name(subject, number)
            names = [base] + [f"{base}_v{o + 1}" for o in range(1, options)]
            if not any(n in self.taken for n in names):
                self.taken.update(names)
                return names
            number += 1

    def asset(self, batch: str, index: int, options: int) -> list[str]:
        names = [asset_name(batch, index, option) for option in range(options)]
        self.taken.update(names)
        return names


def _seeds(panel: PanelRequest, count: int) -> list[int]:
    base = panel.seed or new_seed()
    return [clamp_seed(base + option) for option in range(count)]


# ---------------------------------------------------------------------------------------------- panel
def text_request(panel: PanelRequest, prompt: str, taken: Iterable[str]) -> Request:
    """Generate: one job per option, all from one prompt."""
    taken = set(taken)
    batch = panel_batch(panel, prompt, taken)
    names = _Names(taken)
    options = max(1, panel.options)
    labels = names.asset(batch.name, 0, options) if batch else names.draft(prompt, options)
    params = JobSpec.make_params(_panel_params(panel))
    specs = [
        JobSpec(kind=JobKind.TEXT, backend=panel.backend, mode=panel.mode, prompt=prompt,
                negative_prompt=panel.negative_prompt, params=params, batch=batch.name if batch else "",
                index=0, seed=seed, option=option, name=label)
        for option, (seed, label) in enumerate(zip(_seeds(panel, options), labels, strict=True))
    ]
    return Request(batch, specs)


def prompt_batch_request(panel: PanelRequest, base: str, variations: Sequence[str], taken: Iterable[str]) -> Request:
    """Queue Variations: the base prompt with each variation, times the options per prompt. Always a
    batch (`env_<base>_01`), finished when the mode is Production."""
    taken = set(taken)
    batch = named_batch(panel, base, taken, prefix="env")
    names = _Names(taken)
    params = JobSpec.make_params(_panel_params(panel))
    specs: list[JobSpec] = []
    options = max(1, panel.options)
    for index, variation in enumerate(variations):
        labels = names.asset(batch.name, index, options)
        for option, (seed, label) in enumerate(zip(_seeds(panel, options), labels, strict=True)):
            specs.append(JobSpec(kind=JobKind.TEXT, backend=panel.backend, mode=panel.mode,
                                 prompt=joined_prompt(base, variation), negative_prompt=panel.negative_prompt,
                                 params=params, batch=batch.name, index=index, seed=seed, option=option,
                                 name=label))
    return Request(batch, specs)


def image_request(panel: PanelRequest, images: Sequence[PreparedInput], taken: Iterable[str],
                  subject: str = "") -> Request:
    """Generate from Images: one job per image (times the options). In Production the images form one
    batch named after the first (or `subject`)."""
    taken = set(taken)
    batch = panel_batch(panel, subject or images[0].label or "image", taken)
    names = _Names(taken)
    options = max(1, panel.options)
    specs: list[JobSpec] = []
    for index, image in enumerate(images):
        labels = names.asset(batch.name, index, options) if batch else names.draft(image.label or "image", options)
        params = JobSpec.make_params(_panel_params(panel, extra={PREPARED_IMAGES: (image.prepared,),
                                                                     BESIDE: image.beside}))
        for option, (seed, label) in enumerate(zip(_seeds(panel, options), labels, strict=True)):
            specs.append(JobSpec(kind=JobKind.IMAGE, backend=panel.backend, mode=panel.mode,
                                 image_paths=(image.source,), params=params, batch=batch.name if batch else "",
                                 index=index, seed=seed, option=option, name=label))
    return Request(batch, specs)


VIEW_ORDER = ("front", "left", "back", "right")


def multiview_request(panel: PanelRequest, views: Sequence[PreparedInput], taken: Iterable[str],
                      subject: str = "") -> Request:
    """Views of one subject (a front and at least one more) → one multiview job."""
    by_view = {v.view: v for v in views}
    if "front" not in by_view or len(by_view) < 2:
        raise ValueError("a multiview job needs a front view and at least one more view")
    order = [v for v in VIEW_ORDER if v in by_view]
    subject = subject or by_view["front"].label or "multiview"
    taken = set(taken)
    batch = panel_batch(panel, subject, taken)
    names = _Names(taken)
    label = names.asset(batch.name, 0, 1)[0] if batch else names.draft(subject, 1)[0]
    beside = tuple(name for v in order for name in by_view[v].beside)
    params = JobSpec.make_params(_panel_params(panel, extra={
        PREPARED_IMAGES: tuple(by_view[v].prepared for v in order), VIEWS: tuple(order), BESIDE: beside}))
    spec = JobSpec(kind=JobKind.MULTIVIEW, backend=panel.backend, mode=panel.mode,
                   image_paths=tuple(by_view[v].source for v in order), params=params,
                   batch=batch.name if batch else "", seed=_seeds(panel, 1)[0], name=label)
    return Request(batch, [spec])


def camera_title(camera: str) -> str:
    return f"Camera: {camera}"


def camera_request(panel: PanelRequest, image: PreparedInput, camera: str, taken: Iterable[str],
                   depth: str = "") -> Request:
    """Generate from Camera: one job from the camera's render; the subject is `camera_<camera name>`, and
    the job is titled "Camera: <camera name>" (its input is a capture file whose path means nothing).
    `depth`: the camera's depth capture, for the local engine."""
    subject = f"camera_{camera}"
    taken = set(taken)
    batch = panel_batch(panel, subject, taken)
    names = _Names(taken)
    label = names.asset(batch.name, 0, 1)[0] if batch else names.draft(subject, 1)[0]
    params = JobSpec.make_params(_panel_params(panel, extra={
        PREPARED_IMAGES: (image.prepared,), CAPTURE: capture_param(camera, image.beside, depth),
        TITLE: camera_title(camera)}))
    spec = JobSpec(kind=JobKind.IMAGE, backend=panel.backend, mode=panel.mode, image_paths=(image.source,),
                   params=params, batch=batch.name if batch else "", seed=_seeds(panel, 1)[0], name=label)
    return Request(batch, [spec])


def capture_param(camera: str, objects: Iterable[str], depth: str = "") -> dict[str, Any]:
    """The `capture` parameter of a camera job (see CAPTURE)."""
    capture: dict[str, Any] = {"camera": camera, "objects": list(objects)}
    if depth:
        capture[CAPTURE_DEPTH] = depth
    return capture


def depth_capture(params: dict[str, Any]) -> str:
    """The depth capture a job's parameters carry, or "" (not a camera job, or not for the local engine)."""
    capture = params.get(CAPTURE)
    return str(dict(capture).get(CAPTURE_DEPTH) or "") if capture is not None else ""


def parts_request(panel: PanelRequest, prefix: str, parts: Sequence[str], taken: Iterable[str]) -> Request:
    """Generate Parts: one text job per part (prefixed by the asset's prompt), assembled under one parent.
    Always a batch, so the parts share one collection; finished when the mode is Production."""
    taken = set(taken)
    batch = named_batch(panel, prefix or "parts", taken, prefix="gen")
    seed = _seeds(panel, 1)[0]
    specs = _parts_specs(prefix, parts, mode=panel.mode, backend=panel.backend, seed=seed, batch=batch.name,
                         index=0, params=_panel_params(panel))
    return Request(batch, specs)


def _parts_specs(prefix: str, parts: Sequence[str], *, mode: Mode, backend: str, seed: int, batch: str,
                 index: int, params: dict[str, Any]) -> list[JobSpec]:
    group = asset_name(batch, index)
    return [
        JobSpec(kind=JobKind.TEXT, backend=backend, mode=mode, prompt=joined_prompt(prefix, part), batch=batch,
                index=index, seed=clamp_seed(seed + number),
                params=JobSpec.make_params({**params, "part_name": slug(part, 24), "part_index": number}),
                name=f"{group}_{slug(part, 24)}")
        for number, part in enumerate(parts)
    ]


def promote_request(panel: PanelRequest, draft_spec: dict[str, Any], draft_object: str,
                    taken: Iterable[str], draft_task_id: str = "") -> Request:
    """Promote: the draft's own request (stored on the object as `kiln_spec`) with only the mode changed,
    as a Production batch of its own that the panel's target, budget and preset finish. Where the
    provider refines a preview (`REFINE_PROMOTES`: Meshy), the job is that refine of the draft's own task
    (`draft_task_id`, stored on the object as `kiln_task_id`), so the shape the artist chose is kept."""
    spec = JobSpec.from_json(draft_spec)
    production = replace(panel, mode=Mode.PRODUCTION, backend=spec.backend)
    subject = spec.prompt or (spec.name.removeprefix("draft_").rsplit("_", 1)[0] if spec.name else "draft")
    taken = set(taken)
    batch = panel_batch(production, subject, taken)
    assert batch is not None
    label = _Names(taken).asset(batch.name, 0, 1)[0]
    # Keep what the artist chose (images, views, capture, parts), change what the mode means.
    kept = {k: v for k, v in spec.params_dict.items()
            if k in (PREPARED_IMAGES, VIEWS, CAPTURE, TITLE, "part_name", "part_index")}
    if spec.backend in REFINE_PROMOTES and draft_task_id and spec.kind is JobKind.TEXT:
        kept[PREVIEW_TASK_ID] = draft_task_id
    params = JobSpec.make_params(_panel_params(production, spec.backend, {**kept, REPLACES: draft_object}))
    promoted = replace(spec, mode=Mode.PRODUCTION, params=params, batch=batch.name, index=0, option=0, name=label)
    return Request(batch, [promoted])


# ---------------------------------------------------------------------------------------------- manifests
def manifest_batch(*, name: str, mode: Mode, backend: str, priority: Priority, start_at: float | None,
                   budget: float | None, finish: FinishPreset | None, target: str, theme: Theme | None,
                   manifest_text: str = "") -> BatchSpec:
    """A manifest's batch, with the hash of its text so a resume can tell an edited manifest."""
    digest = hashlib.sha256(manifest_text.encode()).hexdigest()[:16] if manifest_text else ""
    return BatchSpec(name, mode=mode, backend=backend, priority=priority, start_at=start_at, budget=budget,
                     finish=finish if mode is Mode.PRODUCTION else None, target=target, theme=theme,
                     manifest_hash=digest)


def manifest_asset_specs(batch: BatchSpec, *, kind: str, index: int, name: str, base_seed: int, prompt: str = "",
                         images: Sequence[PreparedInput] = (), parts: Sequence[str] = (), options: int = 1,
                         face_budget: int = 0) -> list[JobSpec]:
    """One manifest asset → its specs. Seeds derive from the asset's identity (name and request), not its
    position, so inserting an asset changes no other job."""
    params = _params(batch.mode, batch.backend, batch.target, face_budget,
                     theme_params(batch.backend, batch.mode, batch.theme.prompt) if batch.theme else None)
    identity = json.dumps([name, kind, prompt, [i.source for i in images], list(parts)], sort_keys=True)
    seed = derived_seed(base_seed, identity)
    common: dict[str, Any] = {"backend": batch.backend, "mode": batch.mode, "batch": batch.name, "index": index}
    names = [asset_name(batch.name, index, option) for option in range(max(1, options))]
    if kind == "text":
        frozen = JobSpec.make_params(params)
        return [JobSpec(kind=JobKind.TEXT, prompt=prompt, params=frozen, seed=clamp_seed(seed + option),
                        option=option, name=label, **common)
                for option, label in enumerate(names)]
    if kind == "image":
        image = images[0]
        frozen = JobSpec.make_params({**params, PREPARED_IMAGES: (image.prepared,)})
        return [JobSpec(kind=JobKind.IMAGE, image_paths=(image.source,), params=frozen,
                        seed=clamp_seed(seed + option), option=option, name=label, **common)
                for option, label in enumerate(names)]
    if kind == "multiview":
        by_view = {v.view: v for v in images}
        order = [v for v in VIEW_ORDER if v in by_view]
        frozen = JobSpec.make_params({**params, PREPARED_IMAGES: tuple(by_view[v].prepared for v in order),
                                      VIEWS: tuple(order)})
        return [JobSpec(kind=JobKind.MULTIVIEW, image_paths=tuple(by_view[v].source for v in order),
                        params=frozen, seed=seed, name=names[0], **common)]
    return _parts_specs(prompt, parts, mode=batch.mode, backend=batch.backend, seed=seed, batch=batch.name,
                        index=index, params=params)


def estimate(request: Request, estimate_credits: Any) -> float:
    """The credits a request commits: the same per-spec estimate the scheduler records when queuing."""
    return float(sum(estimate_credits(spec) for spec in request.specs))


def view_facing(normal: Sequence[float]) -> str | None:
    """Which turnaround view a reference image shows, from the direction its picture faces (world space):
    a front reference faces -Y (towards a front-view camera), a right one +X, a left one -X, a back one +Y.
    None when it faces up or down, or no axis clearly wins."""
    x, y = float(normal[0]), float(normal[1])
    if max(abs(x), abs(y)) < 0.7:
        return None
    if abs(y) >= abs(x):
        return "front" if y < 0 else "back"
    return "right" if x > 0 else "left"
