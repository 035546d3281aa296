"""Pre-flight: the checklist an experienced artist runs before spending a credit, run for them, offline
and in milliseconds.

Prompts: the chosen backend's hard limits, how specific the prompt is (an object, a material, a style,
a view), and words that fight the mode or the target. Reference images: resolution, a subject cut by the
frame, several subjects, low contrast, a busy background, blur and the alpha channel, all measured with
numpy on a copy no larger than 512 px (DESIGN: image checks run on a downscaled copy).

Severity comes from the backend's `InputLimits`, never from its name: a hard error (`ERROR`) is only what
that backend cannot use (an over-long prompt, a busy photo for the local engine, which needs a separable
subject); everything else is a `WARNING` with its fix, and the artist decides; a `TIP` only improves
the odds. Nothing here imports bpy: the panel, the operators and the headless batch all call it.
"""

from __future__ import annotations

import enum
import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .backends import registry
from .backends.base import InputLimits
from .imaging.raster import label_components
from .imaging.silhouette import NoSubject, extract

_log = logging.getLogger(__name__)

CHECK_SIZE = 512
"""Longest side of the copy the image checks measure (DESIGN: long side ≤ 512 px)."""


class Severity(enum.StrEnum):
    ERROR = "error"
    """The backend cannot use this input: nothing is queued."""
    WARNING = "warning"
    """Likely to waste the credits: said before queueing, and the artist decides."""
    TIP = "tip"
    """Improves the result; shown in the panel and the dry run, never in a refusal."""


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    """Stable identifier (`prompt_too_long`, `busy_background` …) for tests, reports and skip options."""
    reason: str
    """One line: what is wrong."""
    fix: str
    """One line: what to do about it."""

    @property
    def line(self) -> str:
        return f"{self.reason}: {self.fix}" if self.fix else self.reason

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity.value, "code": self.code, "reason": self.reason, "fix": self.fix}


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.WARNING]


def worst(findings: Sequence[Finding]) -> Finding | None:
    """The finding to show first: errors, then warnings, then tips."""
    order = (Severity.ERROR, Severity.WARNING, Severity.TIP)
    return min(findings, key=lambda f: order.index(f.severity), default=None)


def limits_for(backend: str) -> tuple[InputLimits, str]:
    """The backend's input limits and the name the artist knows it by (defaults for an unknown name)."""
    info = registry.find(backend)
    if info is None:
        return InputLimits(), backend or "this backend"
    return info.capabilities.limits, info.label


# ============================================================================================== prompts
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


MATERIALS = _vocabulary("""
wood wooden oak pine timber bamboo metal metallic iron steel bronze brass copper gold golden silver chrome
rusty rusted stone marble granite rock concrete brick clay ceramic porcelain glass crystal plastic rubber
leather fabric cloth cotton wool silk velvet paper cardboard bone ivory ice jade obsidian fur feathered
scaled wicker rope mossy weathered painted lacquered polished enamel resin carbon""")
STYLES = _vocabulary("""
low-poly lowpoly stylized stylised realistic photorealistic cartoon cartoony toon anime chibi voxel
pixel hand-painted handpainted pbr fantasy sci-fi scifi cyberpunk steampunk medieval victorian gothic modern
futuristic retro vintage art-deco baroque rustic minimalist ornate cel-shaded clay claymation miniature
isometric ghibli pixar""") | {"low poly"}
VIEWS = _vocabulary("""
front side back top isometric three-quarter profile view closed open standing sitting t-pose a-pose upright
lying facing angle orthographic""")
VAGUE = _vocabulary("cool nice awesome good great beautiful amazing epic something thing things stuff object "
                  "random interesting pretty fancy")
FILLER = _vocabulary("""
a an the of with and or in on at for from to by as is are be its it this that some very really
game games asset assets model 3d render""")
SPECIFIC_ENOUGH = 60
"""Specificity below this yields a tip with the missing pieces."""

DETAIL_WORDS = ("highly detailed", "ultra detailed", "hyper detailed", "hyperdetailed", "intricate", "8k", "4k",
                "photorealistic", "hyper-realistic", "hyperrealistic", "masterpiece")
HEAVY_WORDS = ("8k", "16k", "high-poly", "high poly", "highpoly", "millions of polygons", "subdivided",
               "zbrush sculpt")
LIGHT_WORDS = ("low-poly", "low poly", "lowpoly")
SCENE_WORDS = ("a scene", "scene of", "landscape", "environment with", "set of", "collection of", "group of",
               "several", "many ")


@dataclass(frozen=True)
class Specificity:
    score: int
    """0..100: names an object (40), a material (20), a style (20), a view or pose (20); vague words cost."""
    suggestions: tuple[str, ...]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def specificity(prompt: str) -> Specificity:
    """How much the prompt tells a generator. "a low-poly fantasy treasure chest, wooden with iron bands,
    closed, isometric view" scores 100; "a cool chest from a game" names an object and nothing else."""
    text = " ".join(prompt.lower().split())
    words = _words(text)
    joined = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
    material = bool(joined & MATERIALS)
    style = bool(joined & STYLES)
    view = bool(joined & VIEWS)
    vague = sorted(set(words) & VAGUE)
    descriptive = MATERIALS | STYLES | VIEWS | VAGUE | FILLER
    nouns = [w for w in words if w not in descriptive and not w.isdigit() and len(w) > 2]
    score = (40 if nouns else 0) + (20 if material else 0) + (20 if style else 0) + (20 if view else 0)
    score = max(0, score - 10 * len(vague))
    suggestions = []
    if not nouns:
        suggestions.append("name the object (a chest, a lantern, a tree stump …)")
    if vague:
        suggestions.append(f"replace {', '.join(repr(v) for v in vague)} with what makes it so")
    if not material:
        suggestions.append("add a material (wooden, iron, stone …)")
    if not style:
        suggestions.append("name the style (low-poly, realistic, stylized …)")
    if not view:
        suggestions.append("say the view or pose (front view, isometric, closed …)")
    return Specificity(score, tuple(suggestions))


def _has(text: str, phrases: Iterable[str]) -> list[str]:
    padded = f" {text} "
    return [p for p in phrases if re.search(rf"(?<![a-z0-9]){re.escape(p.strip())}(?![a-z0-9])", padded)]


def check_prompt(prompt: str, limits: InputLimits, *, mode: str = "draft", target: str = "game",
                 negative_prompt: str = "", backend_label: str = "this backend") -> list[Finding]:
    """Findings on a text prompt for a backend with `limits`, in `mode` ("draft"/"production") for
    `target` ("game"/"film")."""
    findings: list[Finding] = []
    text = " ".join(prompt.split())
    negative = " ".join(negative_prompt.split())
    if not text:
        findings.append(Finding(Severity.ERROR, "prompt_empty", "Type a prompt first: it is empty",
                                "say what to generate, e.g. 'wooden crate with iron bands'"))
    elif len(text) > limits.prompt_max_chars:
        findings.append(Finding(Severity.ERROR, "prompt_too_long",
                                f"The prompt is {len(text)} characters long; the limit is {limits.prompt_max_chars}",
                                f"{backend_label} takes no more: shorten it by "
                                f"{len(text) - limits.prompt_max_chars} characters"))
    if negative:
        if limits.negative_prompt_max_chars <= 0:
            findings.append(Finding(Severity.TIP, "negative_ignored",
                                    f"{backend_label} has no negative prompt: it is ignored", "clear it, or "
                                    "choose a backend that takes one"))
        elif len(negative) > limits.negative_prompt_max_chars:
            findings.append(Finding(Severity.ERROR, "negative_too_long",
                                    f"The negative prompt is {len(negative)} characters long; the limit is "
                                    f"{limits.negative_prompt_max_chars}",
                                    f"{backend_label} takes no more: shorten it by "
                                    f"{len(negative) - limits.negative_prompt_max_chars} characters"))
    if not text:
        return findings
    lowered = text.lower()
    draft = mode.lower() == "draft"
    detail = _has(lowered, DETAIL_WORDS)
    if draft and detail:
        findings.append(Finding(Severity.WARNING, "detail_in_draft",
                                f"'{detail[0]}' asks for detail a Draft does not make (untextured, coarse)",
                                "drop it for the draft, or switch to Production"))
    heavy = _has(lowered, HEAVY_WORDS)
    if not draft and target.lower() == "game" and heavy:
        findings.append(Finding(Severity.WARNING, "heavy_for_game",
                                f"'{heavy[0]}' fights the game target (decimated to the face budget, "
                                "power-of-two textures)", "drop it, or use the film target"))
    light = _has(lowered, LIGHT_WORDS)
    if not draft and target.lower() == "film" and light:
        findings.append(Finding(Severity.WARNING, "light_for_film",
                                f"'{light[0]}' fights the film target, which keeps detail",
                                "drop it, or use the game target"))
    scene = _has(lowered, SCENE_WORDS)
    if scene:
        findings.append(Finding(Severity.WARNING, "several_objects",
                                f"'{scene[0].strip()}' asks for a scene; generators make one object",
                                "one object per prompt: use Variations or Parts for the rest"))
    rated = specificity(text)
    if rated.score < SPECIFIC_ENOUGH:
        findings.append(Finding(Severity.TIP, "vague_prompt", f"The prompt is vague (specificity "
                                f"{rated.score}/100)", "; ".join(rated.suggestions[:3])))
    return findings


# =============================================================================================== images
@dataclass(frozen=True)
class ImageMeasures:
    """What the image checks measured, on the ≤512 px copy (kept for reports and tuning)."""

    width: int
    height: int
    alpha: str
    """"none", "clean" or "soft"."""
    subject_share: float
    background_edges: float
    """Share of edge pixels in the background: 0 on a studio backdrop, ~0.2+ on a street photo."""
    contrast: float
    sharpness: float
    """Laplacian variance over gradient energy near the subject: ~1 for crisp edges, falls as 1/σ²."""
    components: int


MIN_SIDE_PX = 8
BUSY_EDGES = 0.06
LOW_CONTRAST = 0.12
BLURRY = 0.12
SMALL_SUBJECT = 0.04
TOUCH_SHARE = 0.02
"""Share of one side's pixels covered by the subject before it counts as touching (cut by) the frame."""
COMPONENT_SHARE = 0.05
"""A separate blob counts as another subject from this share of the largest one (smaller: specks)."""


def downscaled(rgba: npt.NDArray[np.uint8], limit: int = CHECK_SIZE) -> npt.NDArray[np.float32]:
    """An (h, w, 4) float copy in 0..1 no larger than `limit`: a whole-pixel box average. From a factor of
    4 on, each block's central 2x2 stands for it (a quarter of the reads: a 2048² image costs ~5 ms, not
    ~20; still an average, so noise and texture read as what they are, not aliased single pixels)."""
    height, width = rgba.shape[:2]
    factor = max(1, -(-max(height, width) // limit))
    if factor == 1:
        return rgba.astype(np.float32) / 255.0
    h, w = height // factor, width // factor
    channels = rgba.shape[2]
    taps = factor if factor < 4 else 2
    first = (factor - taps) // 2
    wide: type[np.unsignedinteger[Any]] = np.uint16 if taps * taps * 255 <= 65535 else np.uint32
    # Rows first (each slice is whole contiguous rows), then columns: summing strided slices in place is
    # ~10x faster in numpy than a reduction over reshaped block axes.
    rows: npt.NDArray[np.unsignedinteger[Any]] = rgba[first : h * factor : factor, : w * factor].astype(wide)
    for row in range(first + 1, first + taps):
        rows += rgba[row : h * factor : factor, : w * factor]
    blocks = rows.reshape(h, w, factor, channels)
    summed: npt.NDArray[np.unsignedinteger[Any]] = blocks[:, :, first].copy()
    for col in range(first + 1, first + taps):
        summed += blocks[:, :, col]
    return summed.astype(np.float32) * np.float32(1.0 / (255.0 * taps * taps))


def _gradient(luma: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Gradient magnitude (central differences) and the 4-neighbour Laplacian, same shape, edges zero."""
    grad = np.zeros_like(luma)
    lap = np.zeros_like(luma)
    core = luma[1:-1, 1:-1]
    gx = luma[1:-1, 2:] - luma[1:-1, :-2]
    gy = luma[2:, 1:-1] - luma[:-2, 1:-1]
    grad[1:-1, 1:-1] = 0.5 * np.sqrt(gx * gx + gy * gy)
    lap[1:-1, 1:-1] = luma[1:-1, 2:] + luma[1:-1, :-2] + luma[2:, 1:-1] + luma[:-2, 1:-1] - 4.0 * core
    return grad, lap


def _grow(mask: npt.NDArray[np.bool_], steps: int) -> npt.NDArray[np.bool_]:
    grown = mask.copy()
    for _ in range(steps):  # numpy buffers overlapping in-place operands, so each shift reads the old rows
        grown[1:] |= grown[:-1]
        grown[:-1] |= grown[1:]
        grown[:, 1:] |= grown[:, :-1]
        grown[:, :-1] |= grown[:, 1:]
    return grown


def measure_image(rgba: npt.NDArray[np.uint8], small: npt.NDArray[np.float32] | None = None
                  ) -> tuple[ImageMeasures, npt.NDArray[np.bool_]]:
    """Measure an (H, W, 4) uint8 image (top row first) on its ≤512 px copy (`small`, when the caller
    has it); returns the subject mask too."""
    height, width = rgba.shape[:2]
    small = downscaled(rgba) if small is None else small
    rgb, alpha = small[:, :, :3], small[:, :, 3]
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    transparent = float((alpha < 0.5).mean())
    has_alpha = 0.01 < transparent < 0.99
    ring = max(2, round(0.02 * min(small.shape[:2])))
    border = np.zeros(small.shape[:2], bool)
    border[:ring], border[-ring:], border[:, :ring], border[:, -ring:] = True, True, True, True
    if has_alpha:
        mask = alpha >= 0.5
        partial = float(((alpha > 0.1) & (alpha < 0.9)).sum()) / max(1.0, float(mask.sum()))
        alpha_state = "soft" if partial > 0.15 else "clean"
        contrast = 1.0  # a cut-out has no background to blend into
        plain_border = True
    else:
        background = np.median(rgb[border], axis=0)
        offset = rgb - background
        distance = np.sqrt(np.einsum("ijk,ijk->ij", offset, offset))
        spread = float(np.percentile(distance[border], 90))
        plain_border = spread < 0.15
        floor = max(0.06, 3.0 * spread) if spread < 0.15 else 0.25
        standing = distance > floor
        contrast = float(np.median(distance[standing])) if standing.any() else 0.0
        mask = distance > max(floor, 0.5 * contrast)
        alpha_state = "none"
        if not mask.any() or contrast < 2.0 * floor:  # faint subjects: measure contrast on what stands out at all
            weak = distance > 0.03
            contrast = float(np.median(distance[weak])) if weak.any() else 0.0
            mask = weak if not mask.any() else mask
    grad, lap = _gradient(luma)
    edges = grad > 0.04
    # Edge density where the background is: outside the grown subject, or, when the border itself is
    # not plain (no mask can be trusted then), in a band along the frame, where a centred subject is not.
    band = np.zeros(small.shape[:2], bool)
    margin = max(ring, round(0.1 * min(small.shape[:2])))
    band[:margin], band[-margin:], band[:, :margin], band[:, -margin:] = True, True, True, True
    outside = band if plain_border is False else ~_grow(mask, 3)
    background_edges = float(edges[outside].mean()) if outside.any() else 0.0
    near = _grow(mask, 2) & ~_grow(~mask, 2) if has_alpha else _grow(mask, 2)
    strong = near & edges
    energy = float((grad[strong] ** 2).mean()) if strong.any() else 0.0
    sharpness = float(lap[strong].var() / (4.0 * energy)) if energy > 0 else 1.0
    components = 0
    if plain_border:  # a busy background's "mask" is noise: labelling it costs much and says nothing
        _, sizes = label_components(mask[::2, ::2])  # half the runs; blobs that matter are far larger
        largest = max(sizes[1:], default=0)
        components = sum(1 for s in sizes[1:] if largest and s >= COMPONENT_SHARE * largest and s >= 4)
    return ImageMeasures(width, height, alpha_state, float(mask.mean()), background_edges, contrast, sharpness,
                         components), mask


def _touching(mask: npt.NDArray[np.bool_]) -> list[str]:
    sides = {"top": mask[0], "bottom": mask[-1], "left": mask[:, 0], "right": mask[:, -1]}
    return [side for side, line in sides.items() if float(line.mean()) > TOUCH_SHARE]


def check_image(rgba: npt.NDArray[np.uint8], limits: InputLimits, *, name: str = "the image",
                backend_label: str = "this backend") -> tuple[list[Finding], ImageMeasures | None]:
    """Findings on the image the backend will receive (an (H, W, 4) uint8 array, top row first)."""
    height, width = rgba.shape[:2]
    findings: list[Finding] = []
    if min(height, width) < MIN_SIDE_PX:
        findings.append(Finding(Severity.ERROR, "too_small", f"{name} is only {width}x{height} px",
                                "use an image with a visible subject, at least a few hundred pixels"))
        return findings, None
    if min(height, width) < limits.image_min_px:
        findings.append(Finding(Severity.WARNING, "low_resolution",
                                f"{name} is {width}x{height} px, below the {limits.image_min_px} px "
                                f"{backend_label} needs for detail", f"use a larger image (at least "
                                f"{limits.image_min_px} px on the short side)"))
    small = downscaled(rgba)
    measures, mask = measure_image(rgba, small)
    if limits.needs_separable_subject:
        # What the engine itself will do, on the same small copy: its refusal is the hard error.
        try:
            extract((small * 255.0 + 0.5).astype(np.uint8))
        except NoSubject as exc:
            findings.append(Finding(Severity.ERROR, "no_separable_subject",
                                    f"{exc} ({backend_label} needs a subject it can separate)",
                                    "use a subject on a plain background, or an image with transparency"))
    if measures.alpha == "none" and measures.background_edges > BUSY_EDGES:
        if not errors(findings):  # the engine's own refusal already says it
            findings.append(Finding(Severity.WARNING, "busy_background",
                                    f"{name} has a busy background ({measures.background_edges:.0%} edges "
                                    "outside the subject)", "use a plain background, or cut the subject out "
                                    "with transparency"))
        return _sorted(findings), measures  # the subject cannot be told from that background: the rest is noise
    if measures.alpha == "soft":
        findings.append(Finding(Severity.WARNING, "soft_alpha",
                                f"{name}'s transparency is soft or fringed around the subject",
                                "export a clean cut-out (hard alpha edge, no halo)"))
    if measures.subject_share < 0.002:
        findings.append(Finding(Severity.ERROR, "no_subject", f"no subject stands out in {name}",
                                "frame one object on a plain, contrasting background"))
        return _sorted(findings), measures
    touching = _touching(mask)
    if touching:
        findings.append(Finding(Severity.WARNING, "subject_cropped",
                                f"the subject touches the {' and '.join(touching)} edge (cut by the frame)",
                                "crop with a margin around the whole subject"))
    if measures.components > 1:
        findings.append(Finding(Severity.WARNING, "several_subjects",
                                f"{name} shows {measures.components} separate subjects",
                                "one subject per image: crop to one (views of one subject: use multiview)"))
    if measures.subject_share < SMALL_SUBJECT:
        findings.append(Finding(Severity.WARNING, "subject_small",
                                f"the subject fills only {measures.subject_share:.1%} of {name}",
                                "crop closer, so the subject fills about half of the frame"))
    if measures.alpha == "none" and measures.contrast < LOW_CONTRAST:
        findings.append(Finding(Severity.WARNING, "low_contrast",
                                f"the subject barely stands out from the background (contrast "
                                f"{measures.contrast:.2f})", "use a background of a clearly different tone"))
    if measures.sharpness < BLURRY:
        findings.append(Finding(Severity.WARNING, "blurry", f"{name} looks blurred (sharpness "
                                f"{measures.sharpness:.2f})", "use a sharper, in-focus image"))
    if measures.alpha == "none" and not limits.needs_separable_subject:
        findings.append(Finding(Severity.TIP, "no_alpha", f"{name} has no transparency",
                                f"{backend_label} cuts the subject out itself; a cut-out with alpha removes "
                                "the guesswork"))
    return _sorted(findings), measures


def _sorted(findings: list[Finding]) -> list[Finding]:
    order = (Severity.ERROR, Severity.WARNING, Severity.TIP)
    return sorted(findings, key=lambda f: order.index(f.severity))


def summarize(per_image: Sequence[tuple[str, Sequence[Finding]]]) -> list[str]:
    """For a batch of references: one line per kind of problem, "3 of 20 images have a busy background"."""
    total = len(per_image)
    counts: dict[str, tuple[int, Finding]] = {}
    for _, findings in per_image:
        for finding in {f.code: f for f in findings if f.severity is not Severity.TIP}.values():
            seen = counts.get(finding.code)
            counts[finding.code] = ((seen[0] if seen else 0) + 1, finding)
    lines = []
    for code, (count, finding) in sorted(counts.items(), key=lambda item: -item[1][0]):
        lines.append(f"{count} of {total} images: {SUMMARY_WORDS.get(code, finding.reason)}")
    return lines


SUMMARY_WORDS = {
    "busy_background": "busy background", "subject_cropped": "subject cut by the frame",
    "several_subjects": "several subjects", "low_contrast": "low contrast", "blurry": "blurred",
    "soft_alpha": "soft transparency", "low_resolution": "low resolution", "subject_small": "subject too small",
    "no_separable_subject": "no subject the backend can separate", "no_subject": "no visible subject",
}


# ============================================================================================== balance
@dataclass(frozen=True)
class Affordable:
    """How much of a request the account can pay for: the first `count` specs fit."""

    count: int
    total: int
    needed: float
    available: float
    reserve: float

    @property
    def fits(self) -> bool:
        return self.count >= self.total

    @property
    def shortfall(self) -> float:
        return max(0.0, self.needed - self.available)

    def message(self) -> str:
        reserved = f" ({self.reserve:g} reserved for drafts)" if self.reserve else ""
        return (f"Needs ~{self.needed:g} credits, {self.available:g} available{reserved}: "
                f"{self.shortfall:g} short; {self.count} of {self.total} job(s) fit")


def affordable(estimates: Sequence[float], balance: float | None, reserve: float, *, draft: bool) -> Affordable:
    """Which leading specs the balance pays for. Drafts may spend the reserve; production may not. A
    balance of None (a provider without one, or not read yet) limits nothing; a negative balance (a
    provider that lets the account go below zero) affords nothing."""
    total = len(estimates)
    needed = float(sum(estimates))
    if balance is None:
        return Affordable(total, total, needed, float("inf"), 0.0)
    kept = 0.0 if draft else max(0.0, reserve)
    available = balance - kept
    spent, count = 0.0, 0
    for cost in estimates:
        if spent + cost > available + 1e-9:
            break
        spent += cost
        count += 1
    return Affordable(count, total, needed, available, kept)
