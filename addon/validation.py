"""Input checks that run before anything is queued or spent. Messages are written for the artist."""

from __future__ import annotations

MAX_PROMPT_CHARS = 1024
"""Tripo's documented limit; the strictest of the providers Kiln talks to."""


class InputError(ValueError):
    """Bad input from the artist: shown as is, and nothing was queued."""


def clean_prompt(prompt: str) -> str:
    text = " ".join(prompt.split())
    if not text:
        raise InputError("Type a prompt first: it is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(f"The prompt is {len(text)} characters long; the limit is {MAX_PROMPT_CHARS}")
    return text


MAX_NEGATIVE_PROMPT_CHARS = 255


def clean_negative_prompt(text: str) -> str:
    cleaned = " ".join(text.split())
    if len(cleaned) > MAX_NEGATIVE_PROMPT_CHARS:
        raise InputError(f"The negative prompt is {len(cleaned)} characters long; the limit is "
                         f"{MAX_NEGATIVE_PROMPT_CHARS}")
    return cleaned


def check_network(backend: str, needs_network: bool, online_access: bool) -> None:
    if needs_network and not online_access:
        raise InputError(
            f"'{backend}' needs the internet, but Blender's online access is off "
            "(Preferences ▸ System ▸ Network). The Local backend works offline"
        )
