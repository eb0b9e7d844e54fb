"""The UDF process pool shared by the engine's partition threads: timeouts and replaced pools."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sftmix.transforms import process_pool


def sleep_then_echo(items: list[tuple[float, Any]]) -> list[Any]:
    """Module level: pool workers import it. Each item is (seconds to sleep, value to return)."""
    out = []
    for seconds, value in items:
        time.sleep(seconds)
        out.append(value)
    return out


@pytest.fixture
def pool_of() -> Iterator[Any]:
    previous = process_pool.pool_size()

    def configure(size: int) -> None:
        process_pool.shutdown()
        process_pool.configure(size)

    yield configure
    process_pool.shutdown()
    process_pool.configure(previous)


def in_thread(results: dict[str, Any], name: str, *args: Any, **kwargs: Any) -> threading.Thread:
    def body() -> None:
        results[name] = process_pool.map_chunks(sleep_then_echo, *args, **kwargs)

    thread = threading.Thread(target=body)
    thread.start()
    return thread


def test_another_callers_timeout_does_not_break_this_caller(pool_of: Any) -> None:
    """One thread's hung chunk replaces the pool; the other thread's chunks run again on the new one."""
    pool_of(2)
    results: dict[str, Any] = {}
    steady = [
        in_thread(results, f"steady{n}", [(0.1, i) for i in range(40)], chunk_size=2, chunk_timeout_s=60)
        for n in range(3)
    ]
    time.sleep(0.5)
    hung = in_thread(results, "hung", [(120, "never")] * 4, chunk_size=4, chunk_timeout_s=2)
    for thread in [hung, *steady]:
        thread.join(120)
    assert results["hung"] == [None] * 4
    for n in range(3):
        assert results[f"steady{n}"] == list(range(40))


def test_time_queued_behind_other_chunks_is_not_a_timeout(pool_of: Any) -> None:
    """A chunk waiting for the one worker is not timed until it starts (it would wait ~6 s here)."""
    pool_of(1)
    results: dict[str, Any] = {}
    process_pool.map_chunks(sleep_then_echo, [(0, 0)] * 8, chunk_size=2)  # the worker is up
    busy = in_thread(results, "busy", [(1.0, i) for i in range(8)], chunk_size=2, chunk_timeout_s=60)
    time.sleep(0.3)
    quick = process_pool.map_chunks(sleep_then_echo, [(0.1, "q")] * 4, chunk_size=4, chunk_timeout_s=5)
    busy.join(60)
    assert quick == ["q"] * 4
    assert results["busy"] == list(range(8))
