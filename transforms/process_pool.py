"""Fan heavy per-row Python work out to a process pool from inside a UDF.

Why: Sail runs Python UDFs in its own process under one GIL, and fastText,
Math-Verify and MinHash hold the GIL, so a UDF there uses one core of two.
A pool of ``forkserver`` workers, created once per engine process, gives the
work to every core (DESIGN.md: 5.4 s -> 2.7 s for language ID on 2 cores).
Classic Spark already runs one Python worker per task, so there the size is
0 and work runs inline.

Work functions must be module-level (picklable) and take a list of items and
return a list of results of equal length. ``initializer`` (also module-level)
runs once per worker, e.g. to load a model. A chunk whose worker does not
answer within ``chunk_timeout_s`` gets ``None`` results and the pool is
replaced, so one pathological input never hangs a stage.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

log = logging.getLogger("sftmix")

T = TypeVar("T")
R = TypeVar("R")

_size = 0
_lock = threading.Lock()
_pools: dict[Any, futures.ProcessPoolExecutor] = {}


def configure(size: int) -> None:
    """Set the pool size for this process (0 = run inline)."""
    global _size
    _size = max(0, int(size))


def pool_size() -> int:
    return _size


def _pool_for(initializer: Callable[[], None] | None) -> futures.ProcessPoolExecutor:
    with _lock:
        pool = _pools.get(initializer)
        if pool is None:
            context = multiprocessing.get_context("forkserver")
            pool = futures.ProcessPoolExecutor(_size, mp_context=context, initializer=initializer)
            _pools[initializer] = pool
        return pool


def _discard(initializer: Callable[[], None] | None) -> None:
    with _lock:
        pool = _pools.pop(initializer, None)
    if pool is not None:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop every pool; call before the engine stops (an open pool hangs Sail's exit)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def map_chunks(
    work: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    initializer: Callable[[], None] | None = None,
    chunk_size: int = 2000,
    chunk_timeout_s: float | None = None,
) -> list[R | None]:
    """``work`` over ``items`` in chunks, on the pool when there is one, preserving order."""
    if not items:
        return []
    if _size == 0 or len(items) <= chunk_size // 4:
        if initializer is not None:
            _run_initializer_once(initializer)
        return list(work(items))
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    pool = _pool_for(initializer)
    pending = [pool.submit(work, chunk) for chunk in chunks]
    results: list[R | None] = []
    for index, future in enumerate(pending):
        try:
            results.extend(future.result(timeout=chunk_timeout_s))
        except futures.TimeoutError:
            log.warning("a UDF pool chunk of %d items timed out; replacing the pool", len(chunks[index]))
            results.extend([None] * len(chunks[index]))
            _discard(initializer)
            pool = _pool_for(initializer)
            for later in range(index + 1, len(pending)):
                pending[later].cancel()
                pending[later] = pool.submit(work, chunks[later])
        except futures.process.BrokenProcessPool:
            log.warning("a UDF pool worker died; replacing the pool and rerunning its chunk")
            _discard(initializer)
            pool = _pool_for(initializer)
            results.extend(pool.submit(work, chunks[index]).result(timeout=chunk_timeout_s))
            for later in range(index + 1, len(pending)):
                pending[later] = pool.submit(work, chunks[later])
    return results


def imap(
    work: Callable[[T], R], items: Sequence[T], *, initializer: Callable[[], None] | None = None
) -> Iterator[R]:
    """``work`` over each item, in order, at most two items per worker in flight (bounded memory)."""
    if _size == 0:
        if initializer is not None:
            _run_initializer_once(initializer)
        for item in items:
            yield work(item)
        return
    pool = _pool_for(initializer)
    ahead = 2 * _size
    pending: collections.deque[futures.Future[R]] = collections.deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


_initialized: set[Any] = set()


def _run_initializer_once(initializer: Callable[[], None]) -> None:
    if initializer not in _initialized:
        initializer()
        _initialized.add(initializer)
