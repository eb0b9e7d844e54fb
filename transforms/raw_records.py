"""Map one raw record (a parsed JSON object or Parquet row) to candidate rows.

Pure functions, no I/O: ``jobs/raw_files.py`` reads the files and calls
these. A record either yields candidates or raises ``RecordError`` with a
stable code (``missing_field``, ``wrong_type``, ...) and a message naming the
field, which ingest writes to ``bronze.quarantine``. Types are checked here in
Python because neither engine's JSON functions report a wrong-typed field
(DESIGN.md, engine facts).

Logical field names a source may map (``sources[].fields``), each to a dotted
path in the record:

- both shapes: ``prompt_id``, ``prompt`` or ``messages``, ``system``,
  ``reference_answer``, ``domain``, ``model``, ``tests_passed``,
  ``tests_total``, ``judge_score``, ``verdict``, ``tests``; ``extra.<name>``
  keeps any other field in the ``metadata`` JSON column.
- ``tests``: the prompt's tests for the code sandbox (``transforms/code_verify.py``),
  stored as JSON text in the ``tests`` column: a JSON object or list is
  serialized, a string is kept as it is (a dump that already holds JSON text,
  as LiveCodeBench's ``public_test_cases`` does). Any shape
  ``code_tests.parse_tests`` knows: a list of ``{input, output}`` cases, MBPP's
  ``{test_list, test_setup_code}``, HumanEval's ``{prompt, test,
  entry_point}``. A number or boolean is ``wrong_type``.
- flat: ``completion``, ``reasoning``, ``finish_reason``, ``sample_index``,
  ``completion_tokens``. Without ``sample_index`` a candidate is keyed by its
  file name and line, so re-reading the same file gives the same ids.
- grouped: ``completions`` (a list of strings, or of objects with the flat
  names inside: map ``completion`` etc. relative to the item), ``reasonings``,
  ``finish_reasons``, ``verdicts``, ``judge_scores`` (parallel lists). When
  one source spreads a prompt's candidates over several files (one file per
  model, as Sky-T1's evaluation dumps do), ``key_by_file`` adds the file name
  to the candidate key so their ids do not collide.

Verdicts, test counts and judge scores may also arrive in files of their own
(a sandbox's results, a judge model's replies) that name candidates by id or
by (source, prompt id, sample index): ``transforms/judgments.py`` parses those
and hashes the key with ``candidate_id`` below, so both map to one id.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

FLAT_FIELDS = {"completion", "reasoning", "finish_reason", "sample_index", "completion_tokens"}
GROUPED_FIELDS = {"completions", "reasonings", "finish_reasons", "verdicts", "judge_scores"}
COMMON_FIELDS = {
    "prompt_id", "prompt", "messages", "system", "reference_answer", "domain", "model",
    "tests_passed", "tests_total", "judge_score", "verdict", "tests",
}
DEFAULT_FIELDS = {
    "prompt_id": "prompt_id",
    "prompt": "prompt",
    "completion": "completion",
    "completions": "completions",
}


class RecordError(ValueError):
    """A record that cannot become candidates; ``code`` is the quarantine error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SourceShape:
    """What the reader needs of a source's config (picklable, sent to UDF workers)."""

    name: str
    format: str
    kind: str
    domain: str | None
    language: str
    fields: tuple[tuple[str, str], ...]
    key_by_file: bool = False
    required: tuple[str, ...] = ()

    def check_required(self, record: Any) -> None:
        """Logical fields the source declares required must be present (not null) in the record."""
        for name in self.required:
            if lookup(record, self.path(name)) is None:
                raise RecordError("missing_field", f"missing required field {self.path(name)!r} ({name})")

    def path(self, logical: str) -> str | None:
        mapped = self._mapped
        if logical in mapped:
            return mapped[logical] or None
        return DEFAULT_FIELDS.get(logical)

    @functools.cached_property
    def candidate_paths(self) -> tuple[str | None, ...]:
        """Paths of candidate_fields' inputs, resolved once per shape (they run for every candidate)."""
        names = ("completion", "reasoning", "finish_reason", "completion_tokens", "tests_passed", "tests_total",
                 "judge_score", "verdict")
        return tuple(self.path(name) for name in names)

    @functools.cached_property
    def _mapped(self) -> dict[str, str]:
        # Built once per shape: path() runs ~10 times per candidate (a third of ingest's Python time).
        return dict(self.fields)


def validate_field_names(shape_format: str, fields: dict[str, str]) -> list[str]:
    """Unknown logical names in a source's ``fields`` (config typos)."""
    allowed = COMMON_FIELDS | (FLAT_FIELDS if shape_format in ("flat", "openai_batch") else GROUPED_FIELDS | FLAT_FIELDS)
    return sorted(name for name in fields if name not in allowed and not name.startswith("extra."))


def candidate_id(source: str, prompt_id: str, sample_key: str) -> str:
    """Stable id of a candidate: re-ingesting the same record gives the same id."""
    key = f"{source}\x1f{prompt_id}\x1f{sample_key}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def lookup(record: Any, path: str | None) -> Any:
    """The value at a dotted path; a numeric part indexes a list (``instances.0.output``)."""
    if path is None:
        return None
    if type(record) is dict and "." not in path:  # the common case, without the walk
        return record.get(path)
    node = record
    for part in _path_parts(path):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit():
            node = node[int(part)] if int(part) < len(node) else None
        else:
            return None
    return node


@functools.lru_cache(maxsize=4096)
def _path_parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _text(value: Any, name: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise RecordError("missing_field", f"missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise RecordError("wrong_type", f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError("wrong_type", f"field {name!r} must be an integer, got {type(value).__name__}")
    return value


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError("wrong_type", f"field {name!r} must be a number, got {type(value).__name__}")
    return float(value)


def _prompt_id(value: Any) -> str:
    # Real sets mix int and string ids; both become the same string form.
    if value is None:
        raise RecordError("missing_field", "missing field 'prompt_id'")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError("wrong_type", f"field 'prompt_id' must be a string or integer, got {type(value).__name__}")
    return str(value)


def _answer_text(value: Any) -> str | None:
    # Numeric references (27 or 27.0) are kept as text; verification normalises them.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise RecordError("wrong_type", "field 'reference_answer' must be text or a number, got bool")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(v if isinstance(v, str) else repr(v) for v in value)
    raise RecordError("wrong_type", f"field 'reference_answer' must be text or a number, got {type(value).__name__}")


def _tests_text(value: Any, name: str) -> str | None:
    # JSON text either way: the sandbox parses it per candidate, and one string column keeps the
    # schema the same whatever shape a source's tests have.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    raise RecordError("wrong_type", f"field {name!r} (tests) must be a JSON object, list or text, "
                      f"got {type(value).__name__}")


def _verdict(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "correct" if value else "incorrect"
    if isinstance(value, str):
        return value.strip().lower()
    raise RecordError("wrong_type", f"field 'verdict' must be a string or boolean, got {type(value).__name__}")


def prompt_messages(record: Any, shape: SourceShape) -> tuple[list[dict[str, str]], str, str | None]:
    """The prompt as chat messages, plus the last user text and the system text."""
    messages_path = shape.path("messages")
    if messages_path is not None:
        messages = lookup(record, messages_path)
        if messages is None:
            raise RecordError("missing_field", f"missing field {messages_path!r}")
        if not isinstance(messages, list) or not messages:
            raise RecordError("wrong_type", f"field {messages_path!r} must be a non-empty list of messages")
        clean = []
        for message in messages:
            if not isinstance(message, dict):
                raise RecordError("wrong_type", f"field {messages_path!r} holds a non-object message")
            role = _text(message.get("role"), "role", required=True)
            content = _text(message.get("content"), "content", required=True)
            clean.append({"role": role, "content": content})
        users = [m["content"] for m in clean if m["role"] == "user"]
        if not users:
            raise RecordError("missing_field", f"field {messages_path!r} has no user message")
        systems = [m["content"] for m in clean if m["role"] == "system"]
        system = systems[0] if systems else _text(lookup(record, shape.path("system")), "system")
        return clean, users[-1], system
    prompt = _text(lookup(record, shape.path("prompt")), shape.path("prompt") or "prompt", required=True)
    system = _text(lookup(record, shape.path("system")), "system")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return messages, prompt, system  # type: ignore[return-value]


def prompt_fields(record: Any, shape: SourceShape) -> dict[str, Any]:
    """Fields shared by every candidate of a record."""
    shape.check_required(record)
    messages, prompt, system = prompt_messages(record, shape)
    domain = _text(lookup(record, shape.path("domain")), "domain") or shape.domain
    if domain is None:
        raise RecordError("missing_field", "no domain: map fields.domain or set the source's domain")
    extra = {
        name.removeprefix("extra."): lookup(record, path)
        for name, path in shape.fields
        if name.startswith("extra.")
    }
    return {
        "prompt_id": _prompt_id(lookup(record, shape.path("prompt_id"))),
        "source": shape.name,
        "kind": shape.kind,
        "domain": domain,
        "language": shape.language,
        "system": system,
        "prompt": prompt,
        "messages": messages,
        "reference_answer": _answer_text(lookup(record, shape.path("reference_answer"))),
        "tests": _tests_text(lookup(record, shape.path("tests")), shape.path("tests") or "tests"),
        "model": _text(lookup(record, shape.path("model")), "model"),
        "metadata": orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode() if extra else None,
    }


def candidate_fields(item: Any, shape: SourceShape, sample_index: int | None) -> dict[str, Any]:
    """Fields of one completion; ``item`` is the flat record or a grouped list item."""
    completion, reasoning, finish, tokens, passed, total, score, verdict = shape.candidate_paths
    return {
        "completion": _text(lookup(item, completion), completion or "completion", True),
        "reasoning_content": _text(lookup(item, reasoning), "reasoning"),
        "finish_reason": _text(lookup(item, finish), "finish_reason"),
        "sample_index": sample_index,
        "completion_tokens": _int(lookup(item, tokens), "completion_tokens"),
        "tests_passed": _int(lookup(item, passed), "tests_passed"),
        "tests_total": _int(lookup(item, total), "tests_total"),
        "judge_score": _number(lookup(item, score), "judge_score"),
        "external_verdict": _verdict(lookup(item, verdict)),
    }


def flat_candidates(record: Any, shape: SourceShape, file_name: str, line: int) -> list[dict[str, Any]]:
    if not isinstance(record, dict):
        raise RecordError("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
    common = prompt_fields(record, shape)
    sample_index = _int(lookup(record, shape.path("sample_index")), "sample_index")
    row = {**common, **candidate_fields(record, shape, sample_index)}
    sample_key = str(sample_index) if sample_index is not None else f"{file_name}:{line}"
    row["candidate_id"] = candidate_id(shape.name, common["prompt_id"], sample_key)
    return [row]


def grouped_candidates(record: Any, shape: SourceShape, file_name: str = "") -> list[dict[str, Any]]:
    if not isinstance(record, dict):
        raise RecordError("not_an_object", f"a record must be a JSON object, got {type(record).__name__}")
    common = prompt_fields(record, shape)
    completions_path = shape.path("completions")
    completions = lookup(record, completions_path)
    if completions is None:
        raise RecordError("missing_field", f"missing field {completions_path!r}")
    if not isinstance(completions, list):
        raise RecordError("wrong_type", f"field {completions_path!r} must be a list, got {type(completions).__name__}")
    parallel = {
        name: _parallel_list(record, shape.path(name), len(completions))
        for name in ("reasonings", "finish_reasons", "verdicts", "judge_scores")
    }
    rows = []
    for index, item in enumerate(completions):
        if isinstance(item, str):
            fields = candidate_fields({"completion": item}, _STRING_ITEM, index)
        elif isinstance(item, dict):
            fields = candidate_fields(item, shape, index)
        else:
            raise RecordError("wrong_type", f"{completions_path}[{index}] must be a string or object")
        fields["reasoning_content"] = fields["reasoning_content"] or _text(parallel["reasonings"][index], "reasonings")
        fields["finish_reason"] = fields["finish_reason"] or _text(parallel["finish_reasons"][index], "finish_reasons")
        fields["external_verdict"] = fields["external_verdict"] or _verdict(parallel["verdicts"][index])
        if fields["judge_score"] is None:
            fields["judge_score"] = _number(parallel["judge_scores"][index], "judge_scores")
        sample_key = f"{file_name}:{index}" if shape.key_by_file else str(index)
        rows.append({**common, **fields, "candidate_id": candidate_id(shape.name, common["prompt_id"], sample_key)})
    return rows


_STRING_ITEM = SourceShape("", "flat", "", None, "", (("completion", "completion"),))


def _parallel_list(record: Any, path: str | None, length: int) -> list[Any]:
    values = lookup(record, path)
    if values is None:
        return [None] * length
    if not isinstance(values, list) or len(values) != length:
        raise RecordError("wrong_type", f"field {path!r} must be a list as long as the completions")
    return values


def batch_candidates(request: dict[str, Any], response: dict[str, Any], shape: SourceShape) -> list[dict[str, Any]]:
    """Candidates of one OpenAI-batch response line paired with its request line."""
    common = batch_request_fields(request, shape)
    if lookup(request, shape.path("prompt_id")) is None:
        common["prompt_id"] = str(request.get("custom_id"))
    choices = lookup(response, "response.body.choices")
    if not isinstance(choices, list) or not choices:
        raise RecordError("missing_field", "response has no 'response.body.choices' list")
    model = lookup(response, "response.body.model")
    usage_tokens = lookup(response, "response.body.usage.completion_tokens")
    rows = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise RecordError("wrong_type", f"choices[{position}] must be an object")
        index = _int(choice.get("index", position), "index")
        content = _text(lookup(choice, "message.content"), "message.content", required=True)
        fields = {
            "completion": content,
            "reasoning_content": _text(lookup(choice, "message.reasoning_content"), "message.reasoning_content"),
            "finish_reason": _text(choice.get("finish_reason"), "finish_reason"),
            "sample_index": index,
            "completion_tokens": _int(usage_tokens, "usage.completion_tokens") if len(choices) == 1 else None,
            "tests_passed": None,
            "tests_total": None,
            "judge_score": None,
            "external_verdict": None,
        }
        row = {**common, **fields, "candidate_id": candidate_id(shape.name, common["prompt_id"], str(index))}
        row["model"] = row["model"] or (model if isinstance(model, str) else None)
        rows.append(row)
    return rows


def batch_request_fields(request: dict[str, Any], shape: SourceShape) -> dict[str, Any]:
    """Validate an OpenAI-batch request line and return the prompt fields of its candidates."""
    body = request.get("body")
    if not isinstance(body, dict):
        raise RecordError("missing_field", "request has no 'body' object")
    _int(body.get("n"), "body.n")
    return prompt_fields({**request, **body}, _batch_prompt_shape(shape))


def _batch_prompt_shape(shape: SourceShape) -> SourceShape:
    # In a batch request the messages sit in body.messages and the id is custom_id.
    defaults = {"messages": "messages", "prompt_id": "custom_id", "model": "model"}
    mapped = dict(defaults, **dict(shape.fields))
    return dataclasses.replace(shape, fields=tuple(mapped.items()))

