"""Shared fixtures: one Spark session per engine per test run.

Every test that takes ``engine`` runs twice: on embedded Sail (Delta tables)
and on classic local Spark (Parquet tables, Java 17). ``runtime_factory``
gives a Runtime with its own storage root on that shared engine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sftmix.jobs.runtime.config import EngineConfig, StorageConfig, load_config
from sftmix.jobs.runtime.context import Runtime
from sftmix.jobs.runtime.engine import Engine, start_engine
from sftmix.jobs.runtime.tables import Tables
from sftmix.transforms import process_pool

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ENGINES = ["sail", "spark"]
_engines: dict[str, Engine] = {}


def _start(name: str) -> Engine:
    if name == "sail":
        config = EngineConfig(kind="local", shuffle_partitions=4, udf_pool_size=2)
    else:
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            pytest.skip("classic Spark needs Java 17")
        config = EngineConfig(
            kind="spark",
            master="local[2]",
            shuffle_partitions=4,
            udf_pool_size=0,
            spark_conf={
                "spark.driver.memory": "2g",
                "spark.sql.session.timeZone": "UTC",
                # Tests run hundreds of tiny queries: C1-only JIT spends less CPU compiling than it
                # loses in speed (test_dedup_stage[spark] 52 -> 42 s). Test-only; jobs keep the default.
                "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
            },
        )
    return start_engine(config, StorageConfig())


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    name = request.param
    if name not in _engines:
        for other in list(_engines):  # one engine alive at a time keeps memory low
            _engines.pop(other).stop()
        _engines[name] = _start(name)
    yield _engines[name]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in list(_engines):
        _engines.pop(name).stop()


RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def runtime_factory(engine: Engine, tmp_path: Path) -> RuntimeFactory:
    """Build a Runtime on the shared engine from a config file plus overrides."""

    def make(conf: str | Path = REPO / "conf" / "base.yaml", run_id: str = "test-run", **overrides: Any) -> Runtime:
        values = {"storage.root": str(tmp_path / "lake"), **{k.replace("__", "."): v for k, v in overrides.items()}}
        config = load_config(conf, values)
        process_pool.configure(engine.udf_pool_size)
        storage = dataclasses.replace(config.storage)
        return Runtime(config, engine, Tables(engine.spark, storage, engine.table_format), run_id)

    return make


def read_back(rt: Runtime, name: str) -> list[dict[str, Any]]:
    """All rows of a table as dicts, sorted, read with the engine."""
    rows = [r.asDict(recursive=True) for r in rt.tables.read(name).collect()]
    return sorted(rows, key=lambda r: tuple(str(r.get(k)) for k in sorted(r)))
