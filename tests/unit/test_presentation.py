"""What a queue row says, under plain Python: titles that tell a batch's rows apart, a status that fits
its column for every state and every failure the providers name, one icon per state, rows that keep
their place, and a header whose counts add up to the rows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from addon import presentation
from addon.backends.tripo import ERRORS
from addon.jobs import TITLE, Job, JobError, JobKind, JobSpec, JobState, JobView, Mode
from addon.presentation import STATUS_CHARS, RowState, job_rows, queue_header, short_status


def view(prompt: str = "iron crate", *, state: JobState = JobState.QUEUED, batch: str = "", name: str = "",
         created_at: float = 0.0, **changes: object) -> JobView:
    spec = JobSpec(kind=JobKind.TEXT, backend="tripo", mode=Mode.PRODUCTION, prompt=prompt, batch=batch, name=name)
    return replace(Job(spec=spec, state=state, created_at=created_at).view(), **changes)  # type: ignore[arg-type]


def test_variations_of_one_base_prompt_are_told_apart_by_their_variation() -> None:
    base = "sci-fi car with a long hood and chrome"
    jobs = [view(f"{base} {variation}", batch="env_sci_fi_car_01", name=f"env_sci_fi_car_01_{i + 1:03d}")
            for i, variation in enumerate(("with vents", "with warning lights", "rusted"))]
    assert [row.title for row in job_rows(jobs)] == ["with vents", "with warning lights", "rusted"]


def test_rows_that_would_read_alike_get_their_number() -> None:
    jobs = [view("stone pillar", name="draft_stone_pillar_001"), view("stone pillar", name="draft_stone_pillar_002"),
            view("oak barrel", batch="env_barrels_01", name="env_barrels_01_001_v2")]
    assert [row.title for row in job_rows(jobs)] == ["stone pillar #1", "stone pillar #2", "oak barrel"]


def test_a_long_title_keeps_its_number_and_ends_in_an_ellipsis() -> None:
    prompt = "a weathered medieval stone pillar with ivy and cracks"
    rows = job_rows([view(prompt, name="draft_x_001"), view(prompt, name="draft_x_002")])
    assert all(len(row.title) <= presentation.TITLE_CHARS for row in rows)
    assert rows[0].title.startswith("a weathered") and rows[0].title.endswith("… #1")


def test_camera_and_image_jobs_are_titled_by_what_they_show() -> None:
    camera = JobSpec(kind=JobKind.IMAGE, backend="local", image_paths=("/cache/captures/Cam.Front.png",),
                     params=JobSpec.make_params({TITLE: "Camera: Cam.Front"}))
    image = JobSpec(kind=JobKind.IMAGE, backend="local", image_paths=("/refs/barrel_side.png",))
    rows = job_rows([Job(spec=camera, created_at=1).view(), Job(spec=image, created_at=2).view()])
    assert [row.title for row in rows] == ["Camera: Cam.Front", "barrel_side"]


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_has_a_short_status(state: JobState) -> None:
    status = short_status(view(state=state, eta_s=754.0, progress=0.86,
                               error=JobError("2010", ERRORS[2010][0]) if state is JobState.FAILED else None))
    assert 0 < len(status) <= STATUS_CHARS


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_tripo_failure_fits_the_status_column(code: int) -> None:
    failed = view(state=JobState.FAILED, error=JobError(str(code), ERRORS[code][0] + ": need ~20, have 5"))
    assert 0 < len(short_status(failed)) <= STATUS_CHARS


def test_the_failures_artists_hit_most_say_what_happened() -> None:
    def status(code: int) -> str:
        return short_status(view(state=JobState.FAILED, error=JobError(str(code), ERRORS[code][0])))

    assert status(2010) == "no credits" and status(1002) == "key rejected"
    assert status(2008) == "refused"
    over = view(state=JobState.FAILED, error=JobError("over_budget", "needs ~20 credits, 5 of 50 left"))
    assert short_status(over) == "over budget"


def test_times_carry_units_and_the_running_status_shows_progress() -> None:
    assert presentation.format_eta(12.4) == "~12 s"
    assert presentation.format_eta(130) == "~2 min"
    assert presentation.format_eta(4 * 3600) == "~4 h"
    assert presentation.format_eta(None) == ""
    assert short_status(view(state=JobState.RUNNING, eta_s=12.0, progress=0.86)) == "86% ~12 s"
    assert short_status(view(state=JobState.QUEUED, eta_s=75.0)) == "in ~1 min"


def test_each_row_state_has_its_own_icon() -> None:
    assert len(set(presentation.ICONS.values())) == len(RowState) == len(presentation.ICONS)
    finished = view(state=JobState.FINISHED)
    warned = view(state=JobState.FINISHED, warnings=("texture kept at 1024 px",))
    kept = view(state=JobState.CANCELLED, result_kept=True, credits_spent=10.0)
    cancelled = view(state=JobState.CANCELLED)
    icons = {row.icon for row in job_rows([finished, warned, kept, cancelled])}
    assert len(icons) == 4


def test_rows_keep_their_place_and_a_retry_stays_where_its_first_attempt_was() -> None:
    first, second, third = (view(f"crate {n}", created_at=n) for n in (1, 2, 3))
    failed = replace(second, state=JobState.FAILED)
    retry = view("crate 2", created_at=9, attempts=(failed,))
    order = [row.title for row in job_rows([first, third, retry])]
    assert order == ["crate 1", "crate 2", "crate 3"]
    newest = view("crate 4", created_at=10)
    assert [row.title for row in job_rows([newest, first, third, retry])] == [*order, "crate 4"]


def test_header_counts_add_up_to_the_rows_and_show_the_spend() -> None:
    states = [JobState.QUEUED, JobState.RUNNING, JobState.DOWNLOADING, JobState.READY, JobState.IMPORTED,
              JobState.FINISHED, JobState.FINISHED, JobState.FAILED, JobState.UNCERTAIN, JobState.CANCELLED]
    jobs = [view(f"rock {n}", state=state, batch="env_rocks_01", created_at=n,
                 credits_spent=20.0 if state in (JobState.FINISHED, JobState.IMPORTED) else 0.0)
            for n, state in enumerate(states)]
    rows = job_rows(jobs)
    header = queue_header(rows, session_spent=90.0)
    assert sum(count for _, count in header.counts) == len(rows)
    assert ("2 finished", "CHECKMARK") in header.count_texts()
    assert header.spend_texts() == ["This batch: 60 credits", "This session: 90 credits"]


def test_a_free_queue_shows_no_spend() -> None:
    rows = job_rows([view(state=JobState.FINISHED)])
    assert queue_header(rows, session_spent=0.0).spend_texts() == []


def test_every_short_reason_fits_the_status_column() -> None:
    shorts = [*presentation._SHORT_CODES.values(), *(short for _, short in presentation._SHORT_PHRASES)]
    assert all(len(short) <= STATUS_CHARS for short in shorts), shorts


def test_a_queued_production_job_says_paused_while_production_is() -> None:
    queued = view(state=JobState.QUEUED, eta_s=3.0)
    assert short_status(queued, paused=True) == "paused"
    assert short_status(queued) == "in ~3 s"
    draft = replace(queued, spec=replace(queued.spec, mode=Mode.DRAFT))
    assert short_status(draft, paused=True) == "in ~3 s", "drafts are never paused"
    assert "Status: queued: production is paused; Resume sends it" in presentation.job_tooltip(queued, paused=True)
