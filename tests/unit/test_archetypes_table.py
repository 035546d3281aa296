"""The prompt table: what an artist types → which archetype and which modifiers the engine reads."""

from __future__ import annotations

import pytest
from archetype_prompts import rows

from addon.backends.local.text import plan

ROWS = rows()


def test_the_table_is_large_and_includes_the_reported_misses() -> None:
    assert len(ROWS) >= 150
    prompts = {prompt for prompt, _, _ in ROWS}
    assert {"street lamp", "castle tower", "dragon", "car", "sci-fi crate", "office chair", "oak tree"} <= prompts
    assert sum(archetype is None for _, archetype, _ in ROWS) >= 5, "honest misses are part of the table"


@pytest.mark.parametrize(("prompt", "archetype", "modifiers"), ROWS, ids=[r[0] for r in ROWS])
def test_prompt_reads_as_archetype_and_modifiers(prompt: str, archetype: str | None, modifiers: list[str]) -> None:
    text_plan = plan(prompt, production=False)
    assert (text_plan.archetype.name if text_plan.archetype else None) == archetype
    assert set(modifiers) <= set(text_plan.modifiers), text_plan.modifiers
    if archetype is None:
        assert text_plan.noun and text_plan.noun in prompt.split(), "a miss names the noun it did not know"


def test_the_reported_misses_are_four_different_shapes() -> None:
    names = {plan(p, False).archetype.name for p in ("street lamp", "castle tower", "dragon", "car")}  # type: ignore[union-attr]
    assert len(names) == 4
