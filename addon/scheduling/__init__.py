"""Scheduling: which job goes when (`policy`, pure), the threads that do it (`engine`), what a restart
recovers (`recovery`) and how long it will take (`eta`)."""

from __future__ import annotations

from .engine import QueueSummary, Scheduler, SchedulerConfig

__all__ = ["QueueSummary", "Scheduler", "SchedulerConfig"]
