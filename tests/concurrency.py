"""Run one piece of work in several threads released at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
JOIN_TIMEOUT_SECONDS = 60


def race(count: int, work: Callable[[], T]) -> list[T | Exception]:
    """Call work in `count` threads at once; return what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: list[T | Exception] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome: T | Exception = work()
        except Exception as error:  # noqa: BLE001 - the caller inspects what each thread got
            outcome = error
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_SECONDS)
    return outcomes
