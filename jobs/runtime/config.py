"""The configuration tree: dataclasses validated from YAML at start-up.

A config file may name a parent with ``extends: base.yaml`` (resolved next to
the file); the child is deep-merged over the parent. Validation is strict: an
unknown key or a wrong type is a ``ConfigError`` naming the key path and the
file it came from, so a typo never silently falls back to a default.

Stage parameters are small dataclasses owned by the module that uses them
(``transforms.*``); this module only assembles the tree. Paths in the file are
resolved relative to the working directory, except ``storage.root`` and
source paths given as ``./`` or ``../``, which are taken relative to the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sftmix.transforms.annotate import AnnotateParams
from sftmix.transforms.code_verify import CodeVerifyParams
from sftmix.transforms.cold_start import ColdStartParams
from sftmix.transforms.decontaminate import DecontaminateParams
from sftmix.transforms.dedup import DedupParams
from sftmix.transforms.export_format import ExportParams
from sftmix.transforms.judgments import validate_judgment
from sftmix.transforms.mix import MixParams
from sftmix.transforms.selection import SelectParams
from sftmix.transforms.verify import VerifyParams


class ConfigError(ValueError):
    """A config file does not match the schema; the message names key and file."""


@dataclass(frozen=True)
class EngineConfig:
    # local: embedded Sail; spark: the session spark-submit/Databricks gives; connect: a remote URL.
    kind: Literal["local", "spark", "connect"] = "local"
    url: str | None = None
    master: str | None = None
    shuffle_partitions: int = 8
    # Process-pool size for heavy Python UDFs; None = cores on `local`, 0 on `spark` (DESIGN.md).
    udf_pool_size: int | None = None
    spark_conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageConfig:
    root: str = "lake"
    # auto: delta wherever the engine has it (Sail, Databricks, delta-spark), else parquet.
    format: Literal["auto", "delta", "parquet"] = "auto"
    # With a catalog, tables are `<catalog>.<layer>.<name>` (Unity Catalog) instead of paths.
    catalog: str | None = None
    use_catalog: bool = False
    # Delta files roll at this size. Sail's Delta writer keeps each open file (one row group) in
    # memory until it closes it, so this bounds the memory of every concurrent writer.
    target_file_mb: int = 32

    @property
    def target_file_bytes(self) -> int:
        return self.target_file_mb * 1024 * 1024


@dataclass(frozen=True)
class SourceConfig:
    name: str
    format: Literal["flat", "grouped", "openai_batch"]
    paths: list[str]
    kind: Literal["reasoning", "non_reasoning"] = "reasoning"
    domain: str | None = None
    language: str = "en"
    # logical field -> dotted path in the record (see jobs/ingest.py for the logical names)
    fields: dict[str, str] = field(default_factory=dict)
    max_bad_fraction: float = 0.05
    # openai_batch: a request file and its response file share the name minus these suffixes
    request_suffix: str = ".input.jsonl"
    response_suffix: str = ".output.jsonl"
    # verification policy: candidates without an accepted verdict get `unverified`
    require_verification: bool = False
    # grouped sources whose candidates of one prompt sit in several files (one per model)
    key_by_file: bool = False
    # logical fields a record must carry (e.g. reference_answer for a verified source)
    required: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JudgmentConfig:
    """A judgment source: files of verdicts / test counts / judge replies about candidates (transforms/judgments.py)."""

    name: str
    paths: list[str]
    # jsonl (also .gz / .zst) or parquet; OpenAI-batch output files of a judge run are jsonl.
    format: Literal["jsonl", "parquet"] = "jsonl"
    # How a record names its candidate: candidate_id | fields (source, prompt_id, sample_index) | custom_id.
    key: Literal["candidate_id", "fields", "custom_id"] = "candidate_id"
    # The judged candidates' source, when the records do not name it (key fields / custom_id).
    source: str | None = None
    # key custom_id: how the judge request's custom_id encodes the candidate.
    custom_id_template: str = "{candidate_id}"
    # logical field -> dotted path: candidate_id, source, prompt_id, sample_index, custom_id, verdict,
    # tests_passed, tests_total, judge_score, judge_reply, judge_model, error.
    fields: dict[str, str] = field(default_factory=dict)
    max_bad_fraction: float = 0.05


@dataclass(frozen=True)
class IngestConfig:
    max_record_bytes: int = 16 * 1024 * 1024
    quarantine_raw_chars: int = 4096
    # Parsed records per Arrow batch handed back to the engine.
    batch_rows: int = 2048


@dataclass(frozen=True)
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sources: list[SourceConfig] = field(default_factory=list)
    # In priority order: the first judgment that gives a value wins (transforms/judgments.py).
    judgments: list[JudgmentConfig] = field(default_factory=list)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    annotate: AnnotateParams = field(default_factory=AnnotateParams)
    verify: VerifyParams = field(default_factory=VerifyParams)
    # Code verdicts from running the prompt's tests in the bwrap sandbox (part of stage annotate).
    code_verify: CodeVerifyParams = field(default_factory=CodeVerifyParams)
    select: SelectParams = field(default_factory=SelectParams)
    dedup: DedupParams = field(default_factory=DedupParams)
    decontaminate: DecontaminateParams = field(default_factory=DecontaminateParams)
    mix: MixParams = field(default_factory=MixParams)
    cold_start: ColdStartParams = field(default_factory=ColdStartParams)
    export: ExportParams = field(default_factory=ExportParams)
    seed: int = 1234
    # Filled by load_config, not read from YAML.
    config_file: str = ""
    config_hash: str = ""

    def __post_init__(self) -> None:
        source_names = [s.name for s in self.sources]
        seen: set[str] = set()
        for judgment in self.judgments:
            # Quarantined judgment records sit in bronze.quarantine under the judgment's name.
            if judgment.name in seen or judgment.name in source_names:
                raise ValueError(f"judgments[{judgment.name}]: the name is already used by a source or judgment")
            seen.add(judgment.name)
            problem = validate_judgment(
                judgment.key, judgment.fields, judgment.source, judgment.custom_id_template, source_names
            )
            if problem:
                raise ValueError(f"judgments[{judgment.name}]: {problem}")
        unknown = sorted(set(self.code_verify.sources) - set(source_names))
        if unknown and self.sources:
            raise ValueError(f"code_verify.sources: no source named {', '.join(map(repr, unknown))}")

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"no source named {name!r} in {self.config_file}")


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable hash of settings (dataclasses as dicts): stored beside rows computed from them."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read, merge (``extends``), apply dotted ``overrides`` and validate a config file."""
    path = Path(path).resolve()
    raw = _read_with_parents(path, seen=())
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    _resolve_relative_paths(raw, path.parent)
    digest = hashlib.sha256(yaml.safe_dump(raw, sort_keys=True).encode()).hexdigest()[:16]
    config = build(Config, raw, key="", file=str(path))
    return dataclasses.replace(config, config_file=str(path), config_hash=digest)


def _read_with_parents(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise ConfigError(f"{path}: `extends` cycle through {', '.join(map(str, seen))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    return _deep_merge(_read_with_parents(path.parent / parent, seen + (path,)), data)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    def resolve(p: str) -> str:
        return str((base / p).resolve()) if p.startswith(("./", "../")) else p

    storage = raw.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("root"), str):
        storage["root"] = resolve(storage["root"])
    listed = [raw.get(section) for section in ("sources", "judgments")]
    for source in [item for entries in listed if isinstance(entries, list) for item in entries]:
        if isinstance(source, dict) and isinstance(source.get("paths"), list):
            source["paths"] = [resolve(p) if isinstance(p, str) else p for p in source["paths"]]
    decon = raw.get("decontaminate")
    if isinstance(decon, dict):
        for bench in decon.get("benchmarks") or []:
            if isinstance(bench, dict) and isinstance(bench.get("path"), str):
                bench["path"] = resolve(bench["path"])
    export = raw.get("export")
    if isinstance(export, dict) and isinstance(export.get("path"), str):
        export["path"] = resolve(export["path"])


def build(cls: Any, value: Any, key: str, file: str) -> Any:
    """Turn plain YAML data into ``cls`` (a type hint), or raise naming ``key`` and ``file``."""
    where = key or "<top level>"
    origin = typing.get_origin(cls)
    if dataclasses.is_dataclass(cls):
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {where} must be a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"{file}: unknown key {_join(key, unknown[0])!r} (known: {', '.join(sorted(known))})")
        kwargs = {name: build(hints[name], item, _join(key, name), file) for name, item in value.items()}
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise ConfigError(f"{file}: {where}: {error}") from None
        except ValueError as error:
            raise ConfigError(f"{file}: {where}: {error}") from None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(cls)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return build(option, value, key, file)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{file}: {where}: no type matches {value!r}")
    if origin is Literal:
        allowed = typing.get_args(cls)
        if value not in allowed:
            raise ConfigError(f"{file}: {where} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{file}: {where} must be a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(cls)
        return [build(item_type, item, f"{where}[{i}]", file) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{file}: {where} must be a mapping, got {type(value).__name__}")
        key_type, item_type = typing.get_args(cls)
        return {build(key_type, k, where, file): build(item_type, v, _join(key, str(k)), file) for k, v in value.items()}
    if cls is Any:
        return value
    if cls is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if cls in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{file}: {where} must be {cls.__name__}, got bool")
    if cls in (str, int, float, bool):
        if not isinstance(value, cls):
            raise ConfigError(f"{file}: {where} must be {cls.__name__}, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{file}: {where}: unsupported schema type {cls!r}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
