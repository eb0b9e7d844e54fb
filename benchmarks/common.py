"""Helpers shared by the benchmark scripts: timing, peak memory, demo data, a runtime."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / "work"
RESULTS = REPO / "benchmarks" / "results"


def peak_rss_gb() -> float:
    """Peak RSS of this process (the embedded engine lives here) plus the largest child (pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / (1024 * 1024)


@contextmanager
def timed(label: str, figures: dict[str, Any]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    figures[label] = round(time.perf_counter() - started, 3)


def raw_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def demo_config(demo_dir: Path, lake: Path, engine: str = "local") -> Path:
    """A copy of conf/local.yaml pointed at a benchmark's demo data and lake."""
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    local["extends"] = str(REPO / "conf" / "base.yaml")
    local["storage"] = {"root": str(lake)}
    for entry in local["sources"] + local.get("judgments", []):
        entry["paths"] = [str(demo_dir / p.removeprefix("../demo/")) for p in entry["paths"]]
    for bench in local.get("decontaminate", {}).get("benchmarks", []):
        bench["path"] = str(demo_dir / bench["path"].removeprefix("../demo/"))
    if engine == "spark":
        local["engine"] = {"kind": "spark", "master": "local[2]", "udf_pool_size": 0,
                           "spark_conf": {"spark.driver.memory": "6g"}}
    path = lake.parent / f"bench-{engine}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(local))
    return path


def report(name: str, figures: dict[str, Any]) -> None:
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(figures, indent=2) + "\n")


def cpu_count() -> int:
    return os.cpu_count() or 1
