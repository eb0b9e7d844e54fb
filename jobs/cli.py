"""The ``sftmix`` command: one subcommand per stage plus the tools around them.

Every subcommand that touches tables takes ``--conf FILE`` (default
``conf/local.yaml``) and ``--set key=value`` overrides (YAML values).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

from sftmix.jobs.audit import AuditParams
from sftmix.jobs.ops import last_failed_run
from sftmix.jobs.pipeline import STAGES, StageSelectionError, run_pipeline
from sftmix.jobs.runtime.context import DEFAULT_CONF, PROGRESS_SECONDS, Runtime, open_runtime, setup_logging


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sftmix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    # The demo generator is its own module; a checkout without it still runs the rest.
    if importlib.util.find_spec("sftmix.jobs.demo.generator") is not None:
        from sftmix.jobs.demo import generator as demo

        demo_parser = commands.add_parser("demo-data", help="write seeded demo generation dumps with ground truth")
        demo.add_arguments(demo_parser)

    run_parser = commands.add_parser("run", help="run the pipeline (all stages, or a selection)")
    _add_conf(run_parser)
    run_parser.add_argument("--stages", default=None, help=f"comma-separated subset of: {','.join(STAGES)}")
    run_parser.add_argument("--from", dest="from_stage", default=None, help="start at this stage (resume)")
    run_parser.add_argument("--run-id", default=None, help="default: a new id (UTC time + random suffix)")
    run_parser.add_argument(
        "--resume", action="store_true", help="rerun the last failed run from its failed stage, same run id"
    )
    _add_full(run_parser)
    _add_progress(run_parser)

    for stage in STAGES:
        stage_parser = commands.add_parser(stage, help=f"run the {stage} stage")
        _add_conf(stage_parser)
        stage_parser.add_argument("--run-id", default=None)
        _add_full(stage_parser)
        _add_progress(stage_parser)

    sql_parser = commands.add_parser("sql", help="run a SQL query over the tables, by logical name")
    _add_conf(sql_parser)
    sql_parser.add_argument("query")
    sql_parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql_parser.add_argument("--limit", type=int, default=100, help="rows to print; 0 for all")

    report_parser = commands.add_parser("report", help="write an HTML report with plots (funnel, lengths, mix)")
    _add_conf(report_parser)
    report_parser.add_argument("--out", default="reports", help="output folder (default: %(default)s)")

    audit_parser = commands.add_parser(
        "audit", help="write an HTML page with a seeded sample of rejected candidates per reason, spans highlighted"
    )
    _add_conf(audit_parser)
    audit_parser.add_argument("--out", default="reports/audit.html", help="page to write (default: %(default)s)")
    audit_parser.add_argument("--per-reason", type=int, default=20, help="candidates per reason (default: %(default)s)")
    audit_parser.add_argument("--seed", type=int, default=None, help="hash-order seed (default: the config's seed)")
    for name in ("source", "domain", "reason"):
        audit_parser.add_argument(
            f"--{name}", action="append", default=[], metavar=name.upper(),
            help=f"only this {name} (repeat, or comma-separate, for several)",
        )

    serve_parser = commands.add_parser("serve", help="keep a Spark Connect server with every table registered")
    _add_conf(serve_parser)
    serve_parser.add_argument("--port", type=int, default=15002, help="0 picks a free port (default: %(default)s)")
    serve_parser.add_argument(
        "--refresh-seconds", type=float, default=10.0, help="how often to register tables that appeared"
    )

    whatif_parser = commands.add_parser(
        "whatif", help="re-decide annotate reasons with other thresholds from stored signals (no model runs)"
    )
    _add_conf(whatif_parser)
    whatif_parser.add_argument("changes", nargs="+", metavar="annotate.KEY=VALUE", help="thresholds to try")

    diff_parser = commands.add_parser(
        "diff", help="rows added to and removed from gold.sft_mix between two mix versions, per stratum and reason"
    )
    _add_conf(diff_parser)
    diff_parser.add_argument(
        "--from", dest="from_version", default=None, metavar="V",
        help="mix version number or run id (default: the version before --to)",
    )
    diff_parser.add_argument(
        "--to", dest="to_version", default=None, metavar="V", help="mix version number or run id (default: the latest)"
    )

    maintain_parser = commands.add_parser("maintain", help="compact and vacuum the Delta tables")
    _add_conf(maintain_parser)
    maintain_parser.add_argument(
        "--retain-hours", type=float, default=168.0, help="vacuum files unreferenced for longer (default 7 days)"
    )
    return parser


def _add_conf(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", default=DEFAULT_CONF, help="config file (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def _add_full(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full", action="store_true",
        help="recompute every table from all of bronze (default: annotate, select and dedup only new rows)",
    )


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress-every", type=float, default=PROGRESS_SECONDS, metavar="SECONDS",
        help="log a 'still running' line this often during a stage (default: %(default)s)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.command == "demo-data":
        from sftmix.jobs.demo import generator as demo

        return demo.run(args)
    overrides = parse_overrides(args.set)
    if args.command == "serve":
        from sftmix.jobs.serve import serve

        return serve(args.conf, overrides, port=args.port, refresh_seconds=args.refresh_seconds)
    with open_runtime(args.conf, overrides, run_id=getattr(args, "run_id", None)) as rt:
        if args.command == "sql":
            from sftmix.jobs.sql import run_sql

            return run_sql(rt, args.query, args.format, args.limit)
        if args.command == "report":
            from sftmix.jobs.report import write_report

            print(write_report(rt, Path(args.out)).html)
            return 0
        if args.command == "audit":
            from sftmix.jobs.audit import write_audit

            print(write_audit(rt, Path(args.out), audit_params(args, rt.config.seed)).html)
            return 0
        if args.command == "whatif":
            from sftmix.jobs.whatif import print_whatif, run_whatif

            changes = parse_overrides(args.changes)
            print_whatif(run_whatif(rt, changes), changes)
            return 0
        if args.command == "diff":
            from sftmix.jobs.diff import DiffError, format_diff, run_diff

            try:
                print(format_diff(run_diff(rt, args.from_version, args.to_version)))
            except DiffError as error:
                raise SystemExit(str(error)) from None
            return 0
        if args.command == "maintain":
            from sftmix.jobs.maintain import maintain

            maintain(rt, retain_hours=args.retain_hours)
            return 0
        return _run(rt, args)


def audit_params(args: argparse.Namespace, config_seed: int) -> AuditParams:
    def listed(values: list[str]) -> tuple[str, ...]:
        return tuple(sorted({v.strip() for value in values for v in value.split(",") if v.strip()}))

    if args.per_reason < 1:
        raise SystemExit("--per-reason must be at least 1")
    return AuditParams(
        per_reason=args.per_reason,
        seed=config_seed if args.seed is None else args.seed,
        sources=listed(args.source),
        domains=listed(args.domain),
        reasons=listed(args.reason),
    )


def _run(rt: Runtime, args: argparse.Namespace) -> int:
    rt.progress_seconds = args.progress_every
    rt.full_rebuild = args.full
    if args.command != "run":
        run_pipeline(rt, [args.command])
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    from_stage = args.from_stage
    if args.resume:
        failed = last_failed_run(rt.tables)
        if failed is None:
            raise SystemExit("--resume: the last run in ops.runs did not fail; nothing to resume")
        stages = stages or failed["stages"].split(",")
        from_stage = from_stage or failed["failed_stage"]
        rt.run_id = args.run_id or failed["run_id"]
    try:
        run_pipeline(rt, stages, from_stage)
    except StageSelectionError as error:
        raise SystemExit(str(error)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
