"""A farm task's entry point: `scripts/kiln_batch.py` with the exit code a farm manager understands.

    blender -b --python-exit-code 1 --python farm/flamenco/kiln_task.py -- MANIFEST --out DIR --shard I/N --resume
    blender -b --python-exit-code 1 --python farm/flamenco/kiln_task.py -- --merge OUT

Kiln's shards exit 1 when they finished with failed or uncertain jobs: for a farm that is a completed
shard (the report says which jobs failed, and the merge still runs), but Flamenco fails a task on any
non-zero exit and would then hold back the merge task that depends on it. So exit 1 becomes 0 here, with
a line in the task log. Exit 2 (bad manifest or setup) and a signal stay failures, which Flamenco
retries; with --resume a retried shard continues from its journal.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

KILN_BATCH = Path(__file__).resolve().parents[2] / "scripts/kiln_batch.py"


def main() -> int:
    try:
        runpy.run_path(str(KILN_BATCH), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    else:
        code = 0
    if code == 1:
        print("kiln farm: completed with failed jobs (see its report); exit 0 so the merge "
              "runs", file=sys.stderr)
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
