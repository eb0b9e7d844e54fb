"""``sftmix sql``: a query over every table, registered under its logical name."""

from __future__ import annotations

import csv
import json
import sys

from sftmix.jobs.runtime.context import Runtime


def run_sql(rt: Runtime, query: str, output: str, limit: int) -> int:
    rt.tables.register_all()
    frame = rt.spark.sql(query)
    rows = frame.limit(limit).collect() if limit > 0 else frame.collect()
    columns = frame.columns
    if output == "json":
        for row in rows:
            print(json.dumps(row.asDict(recursive=True), ensure_ascii=False, default=str))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([list(row) for row in rows])
    else:
        print(_table(columns, [[str(v) for v in row] for row in rows]))
    return 0


def _table(columns: list[str], rows: list[list[str]], max_width: int = 60) -> str:
    cells = [[c[:max_width] for c in row] for row in [columns, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)
