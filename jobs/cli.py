"""The ``sftmix`` command: one subcommand per stage plus the tools around them.

Every subcommand that touches tables takes ``--conf FILE`` (default
``conf/local.yaml``) and ``--set key=value`` overrides (YAML values).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from sftmix.jobs.pipeline import STAGES, run_pipeline
from sftmix.jobs.runtime.context import DEFAULT_CONF, open_runtime, setup_logging


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def build_parser() -> argparse.ArgumentParser:
    from sftmix.jobs.demo import generator as demo

    parser = argparse.ArgumentParser(prog="sftmix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser("demo-data", help="write seeded demo generation dumps with ground truth")
    demo.add_arguments(demo_parser)

    run_parser = commands.add_parser("run", help="run the pipeline (all stages, or a selection)")
    _add_conf(run_parser)
    run_parser.add_argument("--stages", default=None, help=f"comma-separated subset of: {','.join(STAGES)}")
    run_parser.add_argument("--from", dest="from_stage", default=None, help="start at this stage")
    run_parser.add_argument("--run-id", default=None)

    for stage in STAGES:
        stage_parser = commands.add_parser(stage, help=f"run the {stage} stage")
        _add_conf(stage_parser)
        stage_parser.add_argument("--run-id", default=None)

    sql_parser = commands.add_parser("sql", help="run a SQL query over the tables, by logical name")
    _add_conf(sql_parser)
    sql_parser.add_argument("query")
    sql_parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql_parser.add_argument("--limit", type=int, default=100)
    return parser


def _add_conf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", default=DEFAULT_CONF, help="config file (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.command == "demo-data":
        from sftmix.jobs.demo import generator as demo

        return demo.run(args)
    overrides = parse_overrides(args.set)
    if args.command == "sql":
        from sftmix.jobs.sql import run_sql

        with open_runtime(args.conf, overrides) as rt:
            return run_sql(rt, args.query, args.format, args.limit)
    stages = list(STAGES) if args.command == "run" else [args.command]
    if args.command == "run" and args.stages:
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    with open_runtime(args.conf, overrides, run_id=args.run_id) as rt:
        run_pipeline(rt, stages, from_stage=getattr(args, "from_stage", None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
