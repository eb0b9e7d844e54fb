"""``sftmix serve``: the embedded Spark Connect server, kept up, with every table registered.

Sail keeps table names per Spark Connect *session*, not per server (checked
2026-11: a table created in one session is "not found" in another). So serve
opens one session with a known id, registers every table there, and prints a
URL that carries the id (``sc://127.0.0.1:15002/;session_id=<uuid>``): every
client that connects with it shares that session and its names. A client that
calls ``spark.stop()`` ends the shared session for everyone (Sail then refuses
that id); serve notices on its next tick, opens a new session, registers the
tables again and prints the new URL.

Tables written after serve started (a pipeline run in another terminal) are
registered on the next tick; Delta reads the latest version at each query.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession

from sftmix.jobs.runtime.config import load_config
from sftmix.jobs.runtime.context import resolve_conf
from sftmix.jobs.runtime.tables import TABLES, Tables

log = logging.getLogger("sftmix")


class Shared:
    """The server's session: its URL and the tables registered in it."""

    def __init__(self, port: int, tables_factory: Callable[[SparkSession], Tables]) -> None:
        self.port = port
        self._tables_factory = tables_factory
        self.spark: SparkSession | None = None
        self.tables: Tables | None = None
        self.url = ""
        self.registered: set[str] = set()

    def open(self) -> None:
        self.url = f"sc://127.0.0.1:{self.port}/;session_id={uuid.uuid4()}"
        # create(), not getOrCreate(): never reuse a session this process may hold for another server.
        self.spark = SparkSession.builder.remote(self.url).create()
        self.tables = self._tables_factory(self.spark)
        self.registered = set()
        self.refresh()

    def alive(self) -> bool:
        try:
            assert self.spark is not None
            self.spark.sql("SELECT 1").collect()  # also keeps the session from idling out
            return True
        except Exception:  # noqa: BLE001 - any failure means: open a new session
            return False

    def refresh(self) -> list[str]:
        """Register the tables that exist now and were not registered yet."""
        assert self.tables is not None
        waiting = tuple(name for name in TABLES if name not in self.registered)
        new = self.tables.register_all(waiting)
        self.registered.update(new)
        return new


def serve(
    conf: str,
    overrides: dict[str, Any] | None = None,
    port: int = 15002,
    refresh_seconds: float = 10.0,
    stop: threading.Event | None = None,
) -> int:
    config = load_config(resolve_conf(conf), overrides)
    if config.engine.kind != "local":
        raise SystemExit(
            f"sftmix serve runs the embedded Sail server (engine.kind local); {config.config_file} has "
            f"engine.kind {config.engine.kind}: connect to that cluster's own Spark Connect endpoint instead"
        )
    from pysail.spark import SparkConnectServer

    os.environ.setdefault("RUST_LOG", "warn")
    server = SparkConnectServer(ip="127.0.0.1", port=port)
    server.start(background=True)
    _, bound = server.listening_address
    table_format = "delta" if config.storage.format == "auto" else config.storage.format
    shared = Shared(bound, lambda spark: Tables(spark, config.storage, table_format))
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        shared.open()
        _announce(shared, config.storage.root)
        while not stop.wait(refresh_seconds):
            if not shared.alive():
                log.warning("the shared session ended (a client called spark.stop()?); opening a new one")
                shared.open()
                _announce(shared, config.storage.root)
                continue
            for name in shared.refresh():
                log.info("registered %s", name)
    except KeyboardInterrupt:
        pass
    finally:
        if shared.spark is not None:
            with contextlib.suppress(Exception):  # the session may be gone already
                shared.spark.stop()
        server.stop()
    return 0


def _announce(shared: Shared, root: str) -> None:
    names = sorted(shared.registered)
    print(f"Spark Connect: {shared.url}", flush=True)
    print(f"  {len(names)} tables from {root}: {', '.join(names) or '(none yet)'}", flush=True)
    print(f"  from Python: SparkSession.builder.remote({shared.url!r}).getOrCreate()", flush=True)
    sys.stdout.flush()
