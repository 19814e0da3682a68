"""A request's time budget (SPINEFOOT_REQUEST_BUDGET), checked between steps of the work.

The checks sit where the work is per resource (R4 validation, the costliest step) and between
stages, so a request that would run for seconds stops within about one resource's cost of its
budget, with a 503 (Retry-After) rather than holding a worker that serves everyone else.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.errors import OverBudget


class Budget:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self._seconds, self._clock = seconds, clock
        self._deadline = clock() + seconds

    def check(self) -> None:
        if self._clock() > self._deadline:
            raise OverBudget.single(
                "too-costly",
                f"the request needed more than its "
                f"{self._seconds:g} s of processing; send "
                f"fewer entries, or retry later",
            )


def unlimited() -> Budget:
    """For callers with no budget (the CLI, benchmarks)."""
    return Budget(float("inf"))
