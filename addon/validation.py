"""Input checks that run before anything is queued or spent. Messages are written for the artist."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

MAX_PROMPT_CHARS = 1024
"""Tripo's documented limit; the strictest of the providers Kiln talks to."""


class InputError(ValueError):
    """Bad input from the artist: shown as is, and nothing was queued."""


def joined_prompt(*texts: str) -> str:
    """The texts as one prompt, their words single-spaced on one line: how a base prompt and a
    variation or a part are sent, shown and checked, from the panel and from a manifest alike."""
    return " ".join(" ".join(texts).split())


def clean_prompt(prompt: str, limit: int = MAX_PROMPT_CHARS) -> str:
    """The prompt on one line; `limit` is the chosen backend's (`InputLimits.prompt_max_chars`) where
    one is chosen. The pre-flight (`addon/preflight.py`) says the same before the click."""
    text = " ".join(prompt.split())
    if not text:
        raise InputError("Type a prompt first: it is empty")
    if len(text) > limit:
        raise InputError(f"The prompt is {len(text)} characters long; the limit is {limit}")
    return text


MAX_NEGATIVE_PROMPT_CHARS = 255


def clean_negative_prompt(text: str, limit: int = MAX_NEGATIVE_PROMPT_CHARS) -> str:
    """A backend without a negative prompt (limit 0) ignores it, so any length passes there."""
    cleaned = " ".join(text.split())
    if limit > 0 and len(cleaned) > limit:
        raise InputError(f"The negative prompt is {len(cleaned)} characters long; the limit is {limit}")
    return cleaned


def check_network(backend: str, needs_network: bool, online_access: bool) -> None:
    if needs_network and not online_access:
        raise InputError(
            f"'{backend}' needs the internet, but Blender's online access is off "
            "(Preferences ▸ System ▸ Network). The Local backend works offline"
        )


def show_value(value: Any) -> str:
    """A value as a manifest wrote it, short and on one line, for an error message (`"no"`, `[2]`,
    `nan`, `a table`): enough to find it, never a page of text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:39] + "…", ensure_ascii=False)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        if not value:
            return "an empty list"
        inner = ", ".join("[…]" if isinstance(v, list) else "{…}" if isinstance(v, dict) else show_value(v)
                          for v in value[:6])
        shown = f"[{inner}{', …' if len(value) > 6 else ''}]"
        return shown if len(shown) <= 60 else f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime | dt.date):
        return "a date"
    if isinstance(value, dt.time):
        return "a time of day"
    return type(value).__name__
