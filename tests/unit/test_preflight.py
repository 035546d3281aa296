"""Pre-flight checks: each fires on an input made to trigger it and stays quiet on a clean counter-example.
The images are drawn here with numpy; severity follows the backend's InputLimits, never its name."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from addon import preflight
from addon.backends.base import InputLimits
from addon.backends.local import LocalBackend
from addon.backends.meshy import MeshyBackend
from addon.backends.tripo import TripoBackend
from addon.preflight import Severity, affordable, check_image, check_prompt, specificity

TRIPO = TripoBackend.capabilities.limits
LOCAL = LocalBackend.capabilities.limits
MESHY = MeshyBackend.capabilities.limits
Image = npt.NDArray[np.uint8]


def codes(findings: list[preflight.Finding]) -> dict[str, Severity]:
    return {f.code: f.severity for f in findings}


# ---------------------------------------------------------------------------------------------- prompts
GOOD = "a low-poly fantasy treasure chest, wooden with iron bands, closed, isometric view"


def test_a_specific_prompt_scores_high_and_a_vague_one_gets_concrete_suggestions() -> None:
    assert specificity(GOOD).score == 100 and check_prompt(GOOD, TRIPO) == []
    vague = specificity("a cool chest from a game")
    assert vague.score < preflight.SPECIFIC_ENOUGH
    assert any("material" in s for s in vague.suggestions) and any("style" in s for s in vague.suggestions)
    assert any("'cool'" in s for s in vague.suggestions)
    assert codes(check_prompt("a cool chest from a game", TRIPO)) == {"vague_prompt": Severity.TIP}


@pytest.mark.parametrize(("limits", "length", "code"), [(TRIPO, 1025, "prompt_too_long"),
                                                        (MESHY, 601, "prompt_too_long")])
def test_the_hard_prompt_limit_is_the_backends(limits: InputLimits, length: int, code: str) -> None:
    long = ("wooden crate " * 200)[:length]
    assert codes(check_prompt(long, limits))[code] is Severity.ERROR
    assert "prompt_too_long" not in codes(check_prompt(long[: limits.prompt_max_chars], limits))


def test_empty_prompt_and_negative_prompt_limits() -> None:
    assert codes(check_prompt("   ", TRIPO)) == {"prompt_empty": Severity.ERROR}
    assert codes(check_prompt(GOOD, TRIPO, negative_prompt="x" * 256))["negative_too_long"] is Severity.ERROR
    assert check_prompt(GOOD, TRIPO, negative_prompt="blurry, text") == []
    assert codes(check_prompt(GOOD, LOCAL, negative_prompt="blurry")) == {"negative_ignored": Severity.TIP}


@pytest.mark.parametrize(("prompt", "mode", "target", "code"), [
    ("highly detailed stone dragon statue, realistic, front view", "draft", "game", "detail_in_draft"),
    ("8k bronze dragon statue, realistic, front view", "production", "game", "heavy_for_game"),
    ("low-poly oak tree, stylized, front view", "production", "film", "light_for_film"),
    ("a scene of a medieval village, stone, stylized, top view", "production", "game", "several_objects"),
])
def test_words_that_fight_the_mode_or_target_warn(prompt: str, mode: str, target: str, code: str) -> None:
    assert codes(check_prompt(prompt, TRIPO, mode=mode, target=target)) == {code: Severity.WARNING}


@pytest.mark.parametrize(("prompt", "mode", "target"), [
    ("highly detailed stone dragon statue, realistic, front view", "production", "film"),
    ("low-poly oak tree, stylized, front view", "production", "game"),
    ("stone dragon statue, realistic, front view", "draft", "game"),
])
def test_the_same_words_are_fine_where_they_fit(prompt: str, mode: str, target: str) -> None:
    assert check_prompt(prompt, TRIPO, mode=mode, target=target) == []


# ----------------------------------------------------------------------------------------------- images
def canvas(size: int = 512, background: tuple[int, int, int] = (240, 240, 240)) -> Image:
    image = np.zeros((size, size, 4), np.uint8)
    image[..., :3] = background
    image[..., 3] = 255
    return image


def disc(image: Image, x: int, y: int, r: int, colour: tuple[int, int, int] = (60, 40, 30)) -> Image:
    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]]
    image[(cols - x) ** 2 + (rows - y) ** 2 < r * r, :3] = colour
    return image


def blurred(image: Image, sigma: float) -> Image:
    size = image.shape[0]
    rows, cols = np.mgrid[:size, :size]
    rows, cols = np.minimum(rows, size - rows), np.minimum(cols, size - cols)
    kernel = np.fft.fft2(np.exp(-(rows**2 + cols**2) / (2 * sigma * sigma)))
    kernel /= kernel[0, 0]
    out = image.copy()
    for channel in range(3):
        out[..., channel] = np.clip(np.real(np.fft.ifft2(np.fft.fft2(image[..., channel]) * kernel)), 0, 255)
    return out


def busy() -> Image:
    rows, cols = np.mgrid[:512, :512]
    image = canvas()
    noise = np.random.default_rng(1).integers(0, 60, (512, 512))
    image[..., :3] = ((((cols // 9 + rows // 13) % 2) * 120 + 60 + noise)[..., None]).astype(np.uint8)
    return disc(image, 256, 256, 120)


def cut_out(soft: bool) -> Image:
    image = disc(canvas(), 256, 256, 150)
    rows, cols = np.mgrid[:512, :512]
    distance = np.sqrt((cols - 256) ** 2 + (rows - 256) ** 2)
    ramp = (180 - distance) / 80 if soft else (150 - distance)
    image[..., 3] = np.clip(ramp * 255, 0, 255).astype(np.uint8)
    return image


CLEAN = disc(canvas(), 256, 256, 150)
TRIGGERS = {
    "busy_background": busy(),
    "subject_cropped": disc(canvas(), 256, 40, 150),
    "several_subjects": disc(disc(canvas(), 150, 256, 80), 380, 256, 80),
    "low_contrast": disc(canvas(background=(128, 128, 128)), 256, 256, 150, colour=(140, 138, 136)),
    "blurry": blurred(CLEAN, 6.0),
    "soft_alpha": cut_out(soft=True),
    "subject_small": disc(canvas(), 256, 256, 40),
    "low_resolution": disc(canvas(128), 64, 64, 40),
}


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_each_image_check_fires_on_its_trigger_as_a_warning_for_tripo(code: str) -> None:
    findings, _ = check_image(TRIGGERS[code], TRIPO)
    assert codes(findings).get(code) is Severity.WARNING, [f.line for f in findings]
    assert not preflight.errors(findings), "Tripo segments the subject itself: nothing here is a hard error"
    assert all(f.reason and f.fix for f in findings)


@pytest.mark.parametrize("image", [CLEAN, cut_out(soft=False), np.repeat(np.repeat(CLEAN, 4, 0), 4, 1)],
                         ids=["plain", "clean-alpha", "2048px"])
def test_clean_images_raise_no_warning(image: Image) -> None:
    for limits in (TRIPO, LOCAL):
        findings, _ = check_image(image, limits)
        assert [f for f in findings if f.severity is not Severity.TIP] == [], [f.line for f in findings]


def test_a_busy_photo_is_a_hard_error_only_for_the_backend_that_needs_a_separable_subject() -> None:
    local, _ = check_image(busy(), LOCAL, backend_label="Local")
    assert codes(local) == {"no_separable_subject": Severity.ERROR}
    assert "background is not plain" in local[0].reason and "plain background" in local[0].fix
    tripo, _ = check_image(busy(), TRIPO)
    assert codes(tripo) == {"busy_background": Severity.WARNING}


def test_alpha_absent_is_a_tip_for_a_segmenting_backend_and_a_tiny_image_an_error() -> None:
    assert codes(check_image(CLEAN, TRIPO)[0]) == {"no_alpha": Severity.TIP}
    assert codes(check_image(canvas(6), TRIPO)[0]) == {"too_small": Severity.ERROR}


def test_a_batch_summary_counts_images_per_problem() -> None:
    per_image = [(f"img{n}", check_image(image, TRIPO)[0]) for n, image in
                 enumerate([busy(), busy(), CLEAN, busy(), CLEAN])]
    assert preflight.summarize(per_image) == ["3 of 5 images: busy background"]


# ---------------------------------------------------------------------------------------------- balance
def test_what_fits_the_balance_less_the_reserve() -> None:
    production = affordable([20.0] * 6, balance=60.0, reserve=20.0, draft=False)
    assert (production.count, production.available, production.shortfall) == (2, 40.0, 80.0)
    assert "2 of 6" in production.message() and "20 reserved for drafts" in production.message()
    assert affordable([20.0] * 6, balance=60.0, reserve=20.0, draft=True).count == 3, "drafts may spend it"
    assert affordable([20.0] * 3, balance=60.0, reserve=0.0, draft=False).fits
    assert affordable([20.0], balance=-5.0, reserve=0.0, draft=True).count == 0, "a negative balance affords nothing"
    assert affordable([20.0] * 9, balance=None, reserve=50.0, draft=False).fits, "no balance: nothing to hold"


def test_report_json_carries_the_findings_per_asset() -> None:
    from addon.batch.report import assemble

    finding = check_image(busy(), TRIPO)[0][0]
    document = assemble(batch="b", manifest="m.toml", mode="production", backend="tripo", interrupted=False,
                        entries=[], wall_s=0.0, output={}, preflight={"b_001": [finding.to_json()]})
    assert document["preflight"]["b_001"] == [{"severity": "warning", "code": "busy_background",
                                               "reason": finding.reason, "fix": finding.fix}]
    assert "preflight" not in assemble(batch="b", manifest="m.toml", mode="draft", backend="local",
                                       interrupted=False, entries=[], wall_s=0.0, output={})
