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


def _discard(initializer: Callable[[], None] | None, pool: futures.ProcessPoolExecutor) -> None:
    """Kill ``pool`` if it is still the current one; another thread may have replaced it already.

    The engine runs several partitions' UDFs as threads of one process, and they share the pool:
    a caller must never kill the replacement another caller just made.
    """
    with _lock:
        if _pools.get(initializer) is not pool:
            return
        del _pools[initializer]
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop every pool; call before the engine stops (an open pool hangs Sail's exit)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


Job = tuple[futures.ProcessPoolExecutor, "futures.Future[Any]"]


def _submit(initializer: Callable[[], None] | None, work: Callable[[Any], Any], item: Any) -> Job:
    """(pool, future) of ``work(item)`` on the current pool, replacing a pool found shut down or broken."""
    for _ in range(3):
        pool = _pool_for(initializer)
        try:
            return pool, pool.submit(work, item)
        except (RuntimeError, futures.process.BrokenProcessPool):  # shut down by another thread meanwhile
            _discard(initializer, pool)
    pool = _pool_for(initializer)
    return pool, pool.submit(work, item)


def _result(future: futures.Future[Any], timeout_s: float | None) -> Any:
    """The future's result within ``timeout_s`` of starting: time queued behind other callers' chunks
    on the shared pool is not the chunk's fault (a full-size run timed out chunks that never started)."""
    if timeout_s is not None:
        while not future.running() and not future.done():
            futures.wait([future], timeout=1.0)
    return future.result(timeout=timeout_s)


def map_chunks(
    work: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    *,
    initializer: Callable[[], None] | None = None,
    chunk_size: int = 2000,
    chunk_timeout_s: float | None = None,
) -> list[R | None]:
    """``work`` over ``items`` in chunks, on the pool when there is one, preserving order.

    A chunk that runs past ``chunk_timeout_s`` gets ``None`` results and its pool is replaced;
    a chunk whose worker died (or whose pool another caller replaced) runs again, up to three times.
    """
    if not items:
        return []
    if _size == 0 or len(items) <= chunk_size // 4:
        if initializer is not None:
            _run_initializer_once(initializer)
        return list(work(items))
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    jobs = [_submit(initializer, work, chunk) for chunk in chunks]

    def replace(index: int, dead: futures.ProcessPoolExecutor) -> None:
        _discard(initializer, dead)
        for later in range(index, len(jobs)):
            if jobs[later][0] is dead:
                jobs[later][1].cancel()
                jobs[later] = _submit(initializer, work, chunks[later])

    results: list[R | None] = []
    for index, chunk in enumerate(chunks):
        answer: list[R | None] = [None] * len(chunk)
        for _attempt in range(3):
            pool, future = jobs[index]
            try:
                answer = _result(future, chunk_timeout_s)
            except futures.TimeoutError:
                log.warning("a UDF pool chunk of %d items timed out; replacing the pool", len(chunk))
                replace(index + 1, pool)
            except (futures.process.BrokenProcessPool, futures.CancelledError):
                log.warning("a UDF pool worker died (or its pool was replaced); rerunning its chunk")
                replace(index, pool)
                continue
            break
        results.extend(answer)
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
