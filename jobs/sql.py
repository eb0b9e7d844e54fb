"""``sftmix sql``: a query over every table, registered under its logical name.

Only the first ``limit`` rows reach the driver (``--limit 0`` for all): the
query itself runs in the engine, so an aggregate over a billion rows is fine,
while ``SELECT *`` on one prints a screenful, not the table.
"""

from __future__ import annotations

import csv
import json
import sys
from decimal import Decimal

from sftmix.jobs.runtime.context import Runtime


def run_sql(rt: Runtime, query: str, output: str, limit: int) -> int:
    rt.tables.register_all()
    frame = rt.spark.sql(query)
    # One row more than asked tells whether the output was cut, without counting the whole result.
    rows = frame.limit(limit + 1).collect() if limit > 0 else frame.collect()
    cut = limit > 0 and len(rows) > limit
    rows = rows[:limit] if cut else rows
    columns = frame.columns
    if output == "json":
        for row in rows:
            print(json.dumps(row.asDict(recursive=True), ensure_ascii=False, default=str))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([list(row) for row in rows])
    else:
        print(_table(columns, [list(row) for row in rows]))
    if cut:
        print(f"(first {limit} rows; --limit 0 prints all)", file=sys.stderr)
    return 0


def _table(columns: list[str], rows: list[list[object]], max_width: int = 60) -> str:
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows if row[i] is not None) for i in
               range(len(columns))]
    cells = [[_text(c)[:max_width] for c in row] for row in [columns, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return " | ".join(parts).rstrip()

    lines = [line(row) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _text(value: object) -> str:
    return "NULL" if value is None else str(value)
