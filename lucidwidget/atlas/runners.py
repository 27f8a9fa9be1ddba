"""Where the units of work run: in this process (`LocalRunner`) or on Ray actors (`ray_runner`).

A runner's `map(tasks)` yields each task's result as it completes (in any order); the driver writes
them. Both runners call the same `work.Worker`.
"""

from __future__ import annotations

from lucidwidget.atlas.work import Worker


class LocalRunner:
    """Runs every task in this process, one after the other, with one `Worker`.

    Args:
        job: the `work.Job`.
        model: the model the driver already loaded (so it is not loaded twice). Defaults to None.
    """

    lost = 0
    """Workers lost during the run: a local run has none to lose."""

    def __init__(self, job, model=None):
        self._worker = Worker(job, model)
        self.names = [self._worker.identity()]

    def map(self, tasks):
        for task in tasks:
            yield self._worker.run(task)

    def close(self):
        """Nothing to release: the worker lives in this process."""
