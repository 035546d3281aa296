"""A 3x5 pixel font for burning asset names into images where Blender cannot render text (no GPU)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Each glyph: five rows of three pixels, top row first ("#" on, "." off).
_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###", "3": "###|..#|.##|..#|###",
    "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###", "6": "###|#..|###|#.#|###", "7": "###|..#|.#.|.#.|.#.",
    "8": "###|#.#|###|#.#|###", "9": "###|#.#|###|..#|###", "a": ".#.|#.#|###|#.#|#.#", "b": "##.|#.#|##.|#.#|##.",
    "c": ".##|#..|#..|#..|.##", "d": "##.|#.#|#.#|#.#|##.", "e": "###|#..|##.|#..|###", "f": "###|#..|##.|#..|#..",
    "g": ".##|#..|#.#|#.#|.##", "h": "#.#|#.#|###|#.#|#.#", "i": "###|.#.|.#.|.#.|###", "j": "..#|..#|..#|#.#|.#.",
    "k": "#.#|#.#|##.|#.#|#.#", "l": "#..|#..|#..|#..|###", "m": "#.#|###|###|#.#|#.#", "n": "##.|#.#|#.#|#.#|#.#",
    "o": ".#.|#.#|#.#|#.#|.#.", "p": "##.|#.#|##.|#..|#..", "q": ".#.|#.#|#.#|##.|.##", "r": "##.|#.#|##.|#.#|#.#",
    "s": ".##|#..|.#.|..#|##.", "t": "###|.#.|.#.|.#.|.#.", "u": "#.#|#.#|#.#|#.#|###", "v": "#.#|#.#|#.#|#.#|.#.",
    "w": "#.#|#.#|###|###|#.#", "x": "#.#|#.#|.#.|#.#|#.#", "y": "#.#|#.#|.#.|.#.|.#.", "z": "###|..#|.#.|#..|###",
    "_": "...|...|...|...|###", "-": "...|...|###|...|...", ".": "...|...|...|...|.#.", " ": "...|...|...|...|...",
}


def text_mask(text: str, scale: int = 2) -> npt.NDArray[np.bool_]:
    """Pixels of `text` (unknown characters print as blanks), each font pixel `scale` pixels wide."""
    columns = []
    for char in text.lower():
        rows = _GLYPHS.get(char, _GLYPHS[" "]).split("|")
        glyph = np.array([[c == "#" for c in row] for row in rows], bool)
        columns += [glyph, np.zeros((5, 1), bool)]
    mask = np.concatenate(columns, axis=1) if columns else np.zeros((5, 1), bool)
    return np.asarray(np.kron(mask, np.ones((scale, scale), bool)).astype(bool))


def burn_text(image: npt.NDArray[np.uint8], text: str, x: int = 4, y: int = 4, scale: int = 2,
              color: tuple[int, int, int] = (235, 235, 235)) -> None:
    """Draw `text` into an (H, W, 3) image in place, with a dark backing for contrast, clipped to the image."""
    mask = text_mask(text, scale)
    height = min(mask.shape[0] + 2, image.shape[0] - y + 1)
    width = min(mask.shape[1] + 2, image.shape[1] - x + 1)
    if height <= 2 or width <= 2:
        return
    region = image[y - 1 : y - 1 + height, x - 1 : x - 1 + width]
    region[:] = (region * 0.35).astype(np.uint8)
    clipped = mask[: height - 2, : width - 2]
    region[1 : 1 + clipped.shape[0], 1 : 1 + clipped.shape[1]][clipped] = color
