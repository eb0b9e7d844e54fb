"""``sftmix sql`` on both engines, and ``sftmix serve`` for a Spark Connect client (Sail)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from deltalake import write_deltalake

from sftmix.jobs.sql import run_sql

from .conftest import REPO

QUERY = "SELECT error, count(*) AS n FROM bronze.quarantine GROUP BY error ORDER BY error"


def write_quarantine(rt) -> None:  # noqa: ANN001 - a Runtime from the fixture
    rows = [("s", "f.jsonl", 1, "invalid_json"), ("s", "f.jsonl", 2, "invalid_json"), ("s", "f.jsonl", 3, "wrong_type")]
    frame = rt.spark.createDataFrame(rows, "source string, file string, line long, error string")
    rt.tables.write(frame, "bronze.quarantine")


def test_sql_formats(runtime_factory, capsys) -> None:
    rt = runtime_factory()
    write_quarantine(rt)

    assert run_sql(rt, QUERY, "json", limit=100) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [{"error": "invalid_json", "n": 2}, {"error": "wrong_type", "n": 1}]

    run_sql(rt, QUERY, "csv", limit=100)
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [
        ["error", "n"], ["invalid_json", "2"], ["wrong_type", "1"]
    ]

    run_sql(rt, QUERY, "table", limit=1)
    table = capsys.readouterr().out.splitlines()
    assert table[0].split("|")[0].strip() == "error" and set(table[1]) <= {"-", "+"}
    assert [line.split("|")[0].strip() for line in table[2:]] == ["invalid_json"]  # --limit 1


def _serve_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "serve.yaml"
    conf.write_text(yaml.safe_dump({"extends": str(REPO / "conf" / "base.yaml"),
                                    "storage": {"root": str(tmp_path / "lake")}}))
    return conf


CLIENT = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
for table in sys.argv[2:]:
    print(table, spark.sql(f"SELECT count(*) FROM {table}").collect()[0][0], flush=True)
"""


def _query(url: str, *tables: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", CLIENT, url, *tables], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return {name: int(n) for name, n in (line.split() for line in out.stdout.splitlines())}


def test_serve_registers_tables_for_spark_connect_clients(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "bronze" / "generations"), pa.table({"candidate_id": ["a", "b", "c"]}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "sftmix.jobs.cli", "serve", "--conf", str(_serve_conf(tmp_path)), "--port", "0",
         "--refresh-seconds", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 90
        url = ""
        while not url and time.monotonic() < deadline:
            line = server.stdout.readline()  # type: ignore[union-attr]
            if not line and server.poll() is not None:
                pytest.fail(f"serve exited with {server.returncode}")
            if line.startswith("Spark Connect: "):
                url = line.split(": ", 1)[1].strip()
        assert url.startswith("sc://127.0.0.1:") and ";session_id=" in url
        assert _query(url, "bronze.generations") == {"bronze.generations": 3}

        # A table written while serve runs is registered on its next tick.
        write_deltalake(str(lake / "silver" / "candidates"), pa.table({"candidate_id": ["a"]}))
        write_deltalake(str(lake / "bronze" / "generations"), pa.table({"candidate_id": ["d"]}), mode="append")
        time.sleep(1.5)
        assert _query(url, "silver.candidates", "bronze.generations") == {
            "silver.candidates": 1, "bronze.generations": 4
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
