"""The other two launchers: spark-submit with the wheel (run for real), and the Databricks bundle (checked).

The spark-submit test is the CI proof that ``jobs/<stage>.py`` works as a
spark-submit script: the built wheel on ``--py-files``, classic Spark on
local[2], Parquet out. It is marked ``spark_submit`` and runs in ``make test``.
"""

from __future__ import annotations

import configparser
import importlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sftmix.jobs import entry_points, pipeline

from .conftest import REPO
from .test_runner import write_tiny_source

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps -w dist .``, into a temporary dist folder."""
    dist = tmp_path_factory.mktemp("dist")
    started = time.perf_counter()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    print(f"wheel built in {time.perf_counter() - started:.1f} s")
    (path,) = dist.glob("sftmix-*.whl")
    return path


def wheel_entry_points(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(archive.read(name).decode())
    return dict(parser["console_scripts"])


def test_wheel_holds_the_package_under_one_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "sftmix/jobs/runtime/context.py" in names and "sftmix/conf/databricks.yaml" in names
    assert not [n for n in names if n.startswith(("jobs/", "transforms/"))]  # no generic top-level packages


@pytest.mark.spark_submit
def test_spark_submit_runs_ingest_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    conf = write_tiny_source(tmp_path)
    raw = yaml.safe_load(conf.read_text())
    raw.update({
        "engine": {"kind": "spark", "shuffle_partitions": 2, "udf_pool_size": 0,
                   "spark_conf": {"spark.ui.enabled": "false", "spark.driver.memory": "1g"}},
        "storage": {"root": str(tmp_path / "lake")},
    })
    conf.write_text(yaml.safe_dump(raw))
    # spark-submit finds SPARK_HOME by running python3 from PATH: the venv's must come first.
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "PYSPARK_DRIVER_PYTHON", "PYSPARK_PYTHON")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    started = time.perf_counter()
    submitted = subprocess.run(
        [str(VENV_BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.log.level=WARN",
         "--py-files", str(wheel),
         str(REPO / "jobs" / "ingest.py"), "--conf", str(conf), "--run-id", "submit-1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    seconds = time.perf_counter() - started
    # spark-submit merges the Python driver's stderr (our log) into its stdout.
    output = submitted.stdout + submitted.stderr
    assert submitted.returncode == 0, output[-4000:]
    print(f"spark-submit ingest: {seconds:.1f} s")
    # The code that ran came from the wheel, not from the checkout's editable install.
    assert f"sftmix 0.1.0 from {wheel}/sftmix/__init__.py" in output, output[-2000:]
    assert "ingest: 7 rows in, 6 rows out" in output

    lake = tmp_path / "lake"
    generations = pq.read_table(lake / "bronze" / "generations")
    assert generations.num_rows == 6
    assert sorted(set(generations.column("prompt_id").to_pylist())) == ["p0", "p1", "p2"]
    assert pq.read_table(lake / "bronze" / "quarantine").column("error").to_pylist() == ["invalid_json"]
    runs = pq.read_table(lake / "ops" / "runs").to_pylist()
    assert sorted(r["status"] for r in runs) == ["running", "succeeded"]
    assert {r["engine"] for r in runs} == {"spark"} and {r["table_format"] for r in runs} == {"parquet"}
    (metrics,) = pq.read_table(lake / "ops" / "stage_metrics").to_pylist()
    assert (metrics["stage"], metrics["rows_in"], metrics["rows_out"]) == ("ingest", 7, 6)
    assert json.loads(metrics["rejected"]) == {"quarantined": 1}


def load_bundle() -> tuple[dict, dict]:
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    jobs: dict = {}
    for pattern in bundle["include"]:
        for path in sorted(REPO.glob(pattern)):
            jobs.update(yaml.safe_load(path.read_text())["resources"]["jobs"])
    return bundle, jobs


def test_bundle_tasks_point_at_wheel_entry_points(wheel: Path) -> None:
    bundle, jobs = load_bundle()
    assert bundle["bundle"]["name"] == "sftmix" and bundle["artifacts"]["sftmix_wheel"]["type"] == "whl"
    (job,) = jobs.values()
    tasks = {t["task_key"]: t for t in job["tasks"]}
    # One task per stage, each depending on the stage before it.
    assert list(tasks) == list(entry_points.PLANNED_STAGES)
    assert set(pipeline.STAGES) <= set(tasks)
    for before, after in zip(job["tasks"], job["tasks"][1:], strict=False):
        assert after["depends_on"] == [{"task_key": before["task_key"]}]
    clusters = {c["job_cluster_key"] for c in job["job_clusters"]}
    scripts = wheel_entry_points(wheel)
    for task in tasks.values():
        assert task["job_cluster_key"] in clusters
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "sftmix"
        target = scripts[wheel_task["entry_point"]]  # KeyError: the wheel lacks the entry point
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target
        assert wheel_task["parameters"][:2] == ["--conf", "{{job.parameters.conf}}"]
        assert task["libraries"] == [{"whl": "../dist/*.whl"}]
    assert job["parameters"] == [{"name": "conf", "default": "databricks.yaml"}]
    assert (REPO / "conf" / "databricks.yaml").exists()  # the default conf ships in the wheel


def test_stage_entry_point_names_a_missing_stage(capsys) -> None:
    if "select" in pipeline.STAGES:
        pytest.skip("every planned stage is built")
    assert entry_points.run_stage_entry("select", []) == 2
    assert "this build has no select stage" in capsys.readouterr().err

