"""Firing calls at the same moment from threads, for race tests."""

from __future__ import annotations

import threading
from typing import Any


def fire_together(calls: list[Any], join_timeout_s: float = 120) -> list[Any]:
    """Run the calls in threads released by one barrier; return each result or error."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def attempt(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[n] = calls[n]()
        except Exception as error:  # collected and asserted on by the caller
            outcomes[n] = error

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=join_timeout_s)
    assert not any(t.is_alive() for t in threads), "a call hung"
    return outcomes
