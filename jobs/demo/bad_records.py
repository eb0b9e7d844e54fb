"""Bad input records: lines an ingest must quarantine, planned up front and recorded exactly.

Which records go bad is decided before writing (a fixed count per code,
>= 1 each, at random positions; never more than a quarter of a source), so
even a small demo has every code and the ground truth can name file and
line for each. Corruptions keep the rest
of the line realistic: a truncated line is cut at a character boundary (so
it is invalid JSON, not invalid UTF-8), and invalid bytes go inside a
string value of otherwise valid JSON.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import orjson

RATE = 0.003
TOO_LARGE_BYTES = 1024 * 1024  # a record_too_large line is longer than this
JSONL_CODES = ("invalid_json", "invalid_utf8", "missing_field", "wrong_type")
SANDBOX_CODES = ("invalid_json", "wrong_type")  # a line cut by a crashed sandbox worker, a string count
BATCH_CODES = ("request_without_response", "batch_error", "response_without_request")

_INVALID_BYTES = (b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc")


class BadPlan:
    """Which record index carries which error code."""

    def __init__(self, rng: random.Random, records: int, codes: tuple[str, ...], rate: float = RATE,
                 too_large: bool = True) -> None:
        wanted = ["record_too_large"] if too_large else []
        wanted += [code for code in codes for _ in range(max(1, round(rate * records)))]
        # ">= 1 per code" must not swamp a tiny demo: at most a quarter of the records go bad.
        wanted = wanted[: records // 4]
        slots = rng.sample(range(records), len(wanted))
        self.by_index: dict[int, str] = dict(zip(slots, wanted, strict=True))

    def at(self, index: int) -> str | None:
        return self.by_index.get(index)


def dump_large(record: dict[str, Any]) -> bytes:
    """Serialize a > 1 MiB record: orjson reserves ~15x a long string's length while encoding it."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _drop(record: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def _retype(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value(node[path[-1]])
    return out


# Per shape: fields whose absence, or whose wrong type, makes a record unusable.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "grouped": (("uuid",), ("problem",), ("answer",), ("generations",)),
    "flat": (("task_id",), ("messages",), ("completion",), ("sample_index",)),
    "batch_request": (("custom_id",), ("body", "messages")),
}
RETYPES: dict[str, tuple[tuple[tuple[str, ...], Any], ...]] = {
    "grouped": ((("generations",), lambda v: v[0][:300]), (("problem",), lambda v: 123),
                (("finish_reasons",), lambda v: "stop")),
    "flat": ((("sample_index",), str), (("completion",), lambda v: 42),
             (("messages",), lambda v: v[0]["content"])),
    "sandbox": ((("tests_passed",), str), (("tests_total",), lambda v: float(v) + 0.5),
                (("sample_index",), str)),
    "batch_request": ((("body", "messages"), lambda v: v[0]["content"]), (("custom_id",), lambda v: 404),
                      (("body", "n"), str)),
}


def corrupt(rng: random.Random, record: dict[str, Any], code: str, shape: str) -> bytes:
    """The line (without newline) for ``record`` damaged as ``code`` describes."""
    if code == "missing_field":
        return orjson.dumps(_drop(record, rng.choice(REQUIRED[shape])))
    if code == "wrong_type":
        path, value = rng.choice(RETYPES[shape])
        return orjson.dumps(_retype(record, path, value))
    line = orjson.dumps(record)
    if code == "invalid_json":
        if rng.random() < 0.5:
            text = line.decode()
            return text[: rng.randint(len(text) // 2, len(text) - 2)].encode()
        return line + rng.choice((b" xyz", b"}", b",", b" {\"extra\": 1"))
    if code == "invalid_utf8":
        at = line.index(b'":"') + 3  # just inside the first string value
        return line[:at] + rng.choice(_INVALID_BYTES) + line[at:]
    raise ValueError(f"not a line-level corruption: {code}")
