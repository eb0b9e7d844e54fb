"""Is an extracted answer equal to the reference? Plain cases in code, the rest through Math-Verify.

Math-Verify is the slowest step per row (DESIGN.md: ~5 ms a pair, 208 pairs/s
on one core), so a batch is judged in three passes, and each row records the
path that settled it:

1. ``cheap``: multiple-choice letters, text answers ("Even", "Paris"), and
   math answers whose normalized strings are identical or which are both plain
   numbers, fractions of integers, or bracketed lists of them (tuples,
   intervals, sets), compared exactly. Text never goes to Math-Verify: it
   reads "Paris" as the product P*a*r*i*s, equal to "sirap".
2. ``cache``: a (normalized answer, reference) key judged before in this
   process, or earlier in the same batch.
3. ``math_verify``: the rest, deduplicated and sorted by reference (each worker
   parses a reference once and keeps it), sent to ``process_pool.map_chunks``.
   Pool workers run Math-Verify on their main thread, where its
   ``signal.alarm`` timeouts work; a timeout, and a chunk the parent gives up
   on, is the verdict ``error``, never a hung job. Errors are cached like any
   result, so a pathological answer costs its timeout once per process.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from sftmix.transforms import process_pool
from sftmix.transforms.answer_extraction import (
    choice_letter,
    extract_choice,
    extract_final_answer,
    last_boxed,
    strip_math_delimiters,
    unwrap_text,
)

log = logging.getLogger("sftmix")

ReferenceKind = Literal["choice", "text", "math"]

_CHOICE_REFERENCE = re.compile(r"\(?([A-J])\)?\.?")
_TEXT_REFERENCE = re.compile(r"[A-Za-z][A-Za-z' \-]*\.?")
# Short words that are answers on their own; other text needs a word of 3+ letters to be text, not a
# product of variables ("ab"). Words Math-Verify reads as math stay math.
_TEXT_WORDS = {"yes", "no"}
_MATH_WORDS = {"infinity", "inf", "oo", "pi", "infty"}
_RATIONAL = re.compile(
    r"(?P<sign>[-+]?)(?:\\frac\{(?P<p>\d+)\}\{(?P<q>\d+)\}|\\frac(?P<p1>\d)(?P<q1>\d)"
    r"|(?P<p2>\d+)/(?P<q2>\d+)|(?P<decimal>\d+(?:\.\d*)?|\.\d+))"
)
# "1,000" groups thousands; "0,111" and "1,22" are decimal commas, left to Math-Verify.
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
# Two plain decimals this far apart differ after Math-Verify's rounding to 6 places.
_NUMERIC_GAP = Fraction(2, 1_000_000)


@dataclass(frozen=True)
class MathSettings:
    """What the comparison needs of the verify config (picklable: it travels to pool workers)."""

    timeout_s: int = 5
    chunk_size: int = 64
    chunk_timeout_s: float = 120.0
    cache_entries: int = 200_000
    max_answer_chars: int = 1000
    scan_chars: int = 2000


@dataclass(frozen=True)
class Outcome:
    """How one (answer, reference) pair was judged."""

    extracted: str | None
    start: int | None
    end: int | None
    method: str | None  # boxed | phrase | choice | whole | scan
    verdict: str  # correct | incorrect | unverifiable | error
    verifier: str  # choice | text | exact | numeric | math_verify | no_answer
    path: str  # cheap | cache | math_verify


# ---------------------------------------------------------------- normalization


def light_normalize(text: str) -> str:
    """Spelling variants Math-Verify reads alike (\\dfrac, \\left(, thin spaces); safe to hand to it."""
    text = strip_math_delimiters(text.strip())
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    text = re.sub(r"\\(?:left|right)\s*\.", "", text)
    text = re.sub(r"\\(?:left|right)\b", "", text)
    # `\\` (a row break in a matrix) is consumed first, so its second backslash is not read as `\ `.
    # `\!` (negative space) joins: "16,\! 386" is 16386 to Math-Verify, while "32, 349" is a pair.
    text = re.sub(
        r"(\\\\)|\\!\s*|\\([,;: ])", lambda m: m.group(1) or ("" if m.group(2) is None else " "), text
    )
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(".").strip()


def strong_normalize(text: str) -> str:
    """A key for identity only: no spaces, no \\text wrappers, degrees, percent or thousands separators."""
    text = unwrap_text(light_normalize(text))
    text = _DEGREES.sub("", text).replace("\\%", "").replace("%", "").replace("\\$", "")
    text = text.replace("{,}", ",").strip()
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class PlainNumber:
    """An integer, decimal or fraction of integers, held exactly; ``exact`` is False for decimals."""

    value: Fraction
    exact: bool


def plain_number(text: str) -> PlainNumber | None:
    """``-3``, ``2.5``, ``.5``, ``7/4``, ``\\frac{7}{4}``, ``\\frac74`` as one exact number (or None)."""
    match = _RATIONAL.fullmatch(text)
    if not match:
        return None
    sign = -1 if match.group("sign") == "-" else 1
    if match.group("decimal") is not None:
        decimal = match.group("decimal")
        return PlainNumber(sign * Fraction(Decimal(decimal)), "." not in decimal)
    numerator = match.group("p") or match.group("p1") or match.group("p2")
    denominator = match.group("q") or match.group("q1") or match.group("q2")
    if int(denominator) == 0:
        return None
    return PlainNumber(sign * Fraction(int(numerator), int(denominator)), True)


def _numbers_equal(a: PlainNumber, b: PlainNumber) -> bool | None:
    if a.value == b.value:
        return True
    if (a.exact and b.exact) or abs(a.value - b.value) >= _NUMERIC_GAP:
        return False
    return None  # decimals within Math-Verify's rounding of each other: it decides


def _plain_sequence(text: str) -> tuple[str, list[PlainNumber]] | None:
    """``(1,2]``, ``[-1/2,3)``, ``\\{1,2\\}`` of plain numbers: (brackets, elements)."""
    for left, right in (("\\{", "\\}"), ("(", ")"), ("[", "]"), ("(", "]"), ("[", ")")):
        if text.startswith(left) and text.endswith(right) and len(text) > len(left) + len(right):
            items = [plain_number(item) for item in text[len(left):-len(right)].split(",")]
            if all(items):
                return left + right, items  # type: ignore[return-value]
            return None
    return None


def _sequences_equal(a: tuple[str, list[PlainNumber]], b: tuple[str, list[PlainNumber]]) -> bool | None:
    (brackets_a, items_a), (brackets_b, items_b) = a, b
    if brackets_a != brackets_b or len(items_a) != len(items_b):
        return None  # "(1,2)" vs "[1,2)", or "(1,000, 2)" whose commas may group digits: Math-Verify reads it
    if brackets_a == "\\{\\}":
        # A set: order does not matter. Unequal is only certain when no member is a rounded decimal.
        if {x.value for x in items_a} == {x.value for x in items_b}:
            return True
        return False if all(x.exact for x in items_a + items_b) else None
    verdicts = [_numbers_equal(x, y) for x, y in zip(items_a, items_b, strict=True)]
    if False in verdicts:
        return False
    return True if all(verdicts) else None


def reference_kind(reference: str) -> ReferenceKind:
    """choice ("C", "(C)"), text (words), or math (everything else)."""
    cleaned = unwrap_text(strip_math_delimiters(reference.strip())).strip()
    if _CHOICE_REFERENCE.fullmatch(cleaned):
        return "choice"
    if _TEXT_REFERENCE.fullmatch(cleaned):
        words = re.findall(r"[A-Za-z]+", cleaned.lower())
        if cleaned.lower().strip(".") in _MATH_WORDS:
            return "math"
        if any(len(w) >= 3 for w in words) or (len(words) == 1 and words[0] in _TEXT_WORDS):
            return "text"
    return "math"


def text_key(text: str) -> str:
    cleaned = unwrap_text(strip_math_delimiters(text.strip())).casefold()
    cleaned = re.sub(r"[\"'`.,;:!?*]", " ", cleaned)
    return re.sub(r"\s+", " ", cleaned).strip()


def cheap_math_verdict(answer: str, reference: str) -> tuple[bool, str] | None:
    """(equal, verifier) when plain code can tell, else None (Math-Verify decides)."""
    a, r = strong_normalize(answer), strong_normalize(reference)
    if a and a == r:
        return True, "exact"
    percent_a, percent_r = "%" in answer, "%" in reference
    if percent_a != percent_r:
        return None  # Math-Verify reads 50% as 0.5 and also accepts 50 for 50%: its rules, not ours
    na, nr = plain_number(a), plain_number(r)
    if na is not None and nr is not None:
        equal = _numbers_equal(na, nr)
        return None if equal is None else (equal, "numeric")
    sa, sr = _plain_sequence(a), _plain_sequence(r)
    if sa is not None and sr is not None:
        equal = _sequences_equal(sa, sr)
        return None if equal is None else (equal, "numeric")
    return None


# ---------------------------------------------------------------- Math-Verify in pool workers

_MV_CONFIG: Any = None
_gold_cache: OrderedDict[str, list[Any] | None] = OrderedDict()
_GOLD_CACHE_ENTRIES = 4096
_warned_no_timeout = False


def warm_up() -> None:
    """Pool-worker initializer: import Math-Verify and run one parse (first use compiles its grammars)."""
    global _MV_CONFIG
    if _MV_CONFIG is not None:
        return
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    _MV_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    parse("$1$", extraction_config=_MV_CONFIG, parsing_timeout=None if _off_main_thread() else 5)


def _off_main_thread() -> bool:
    return threading.current_thread() is not threading.main_thread()


def _parse(text: str, timeout_s: int | None) -> list[Any]:
    from math_verify import parse
    from math_verify.errors import TimeoutException

    try:
        return parse(text, extraction_config=_MV_CONFIG, parsing_timeout=timeout_s, raise_on_error=True)
    except TimeoutException:
        raise
    except Exception:  # noqa: BLE001 - an unparseable answer is "no expression", not a failure
        return []


def _parsed_reference(reference: str, timeout_s: int | None) -> list[Any] | None:
    """The parsed reference, kept per worker; None when parsing it timed out (also kept: no second wait)."""
    from math_verify.errors import TimeoutException

    if reference in _gold_cache:
        _gold_cache.move_to_end(reference)
        return _gold_cache[reference]
    try:
        parsed: list[Any] | None = _parse(_as_math(reference), timeout_s)
    except TimeoutException:
        parsed = None
    _gold_cache[reference] = parsed
    if len(_gold_cache) > _GOLD_CACHE_ENTRIES:
        _gold_cache.popitem(last=False)
    return parsed


def _as_math(answer: str) -> str:
    # A bare extracted answer is not inside any LaTeX environment; Math-Verify extracts from `$...$`.
    return f"${answer}$"


def _equal(gold: list[Any], target: list[Any], timeout_s: int | None) -> str:
    from math_verify import verify
    from math_verify.errors import TimeoutException

    timed_out = False
    for g in gold:
        for t in target:
            try:
                # numeric_precision 50, not 15: at 15 digits 1/2^99 "equals" 1/2^98. Set-relation comparison
                # both ways: a reference [-2, 7] is answered by "-2 <= x <= 7" as well.
                equal = verify(
                    g,
                    t,
                    timeout_seconds=timeout_s,
                    numeric_precision=50,
                    allow_set_relation_comp=True,
                    raise_on_error=True,
                )
                if equal:
                    return "correct"
            except TimeoutException:
                timed_out = True
            except Exception:  # noqa: BLE001, S112 - Math-Verify counts a failed comparison as unequal
                continue
    return "error" if timed_out else "incorrect"


def math_verify_work(items: Sequence[tuple[str, str, str, int]]) -> list[tuple[str, str | None]]:
    """Judge (mode, answer, reference, timeout_s) items; runs in a pool worker (module-level: picklable).

    mode ``expr``: the answer is an extracted final answer; ``scan``: it is answer text in which
    Math-Verify looks for the answer itself (no box or phrase was found).
    """
    warm_up()
    from math_verify.errors import TimeoutException

    global _warned_no_timeout
    if _off_main_thread() and not _warned_no_timeout:
        # Only with udf_pool_size 0 on Sail: signal.alarm needs the main thread, so Math-Verify runs untimed.
        log.warning("Math-Verify runs off the main thread without its timeouts; set engine.udf_pool_size > 0")
        _warned_no_timeout = True
    results: list[tuple[str, str | None]] = []
    for mode, answer, reference, timeout_s in items:
        timeout = None if _off_main_thread() else timeout_s
        try:
            gold = _parsed_reference(reference, timeout)
            if gold is None:
                results.append(("error", None))
                continue
            if not gold:
                results.append(("unverifiable", None))  # a reference Math-Verify cannot read checks nothing
                continue
            target = _parse(_as_math(answer) if mode == "expr" else answer, timeout)
            found = (
                next((t for t in reversed(target) if isinstance(t, str)), None) if mode == "scan" else None
            )
            results.append((_equal(gold, target, timeout) if target else "incorrect", found))
        except TimeoutException:
            results.append(("error", None))
    return results


# ---------------------------------------------------------------- the per-process cache


class VerdictCache:
    """LRU of Math-Verify results by (mode, normalized answer, reference), shared by UDF threads."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._data: OrderedDict[tuple[str, str, str], tuple[str, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> tuple[str, str | None] | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str, str], value: tuple[str, str | None]) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = VerdictCache(200_000)


def verdict_cache() -> VerdictCache:
    return _cache


# ---------------------------------------------------------------- a batch


def judge_answers(
    answers: Sequence[str | None], references: Sequence[str | None], settings: MathSettings
) -> list[Outcome | None]:
    """One Outcome per (answer text, reference); None where either is missing (nothing to judge)."""
    if _cache.entries != settings.cache_entries:
        _cache.entries = settings.cache_entries
    outcomes: list[Outcome | None] = [None] * len(answers)
    pending: dict[tuple[str, str, str], list[tuple[int, Any]]] = {}
    texts: dict[tuple[str, str, str], str] = {}
    for index, (answer, reference) in enumerate(zip(answers, references, strict=True)):
        if not isinstance(reference, str) or not reference.strip() or answer is None:
            continue
        outcome, work = _judge_cheaply(answer if isinstance(answer, str) else "", reference, settings)
        if work is None:
            outcomes[index] = outcome
            continue
        key, text, extraction = work
        pending.setdefault(key, []).append((index, extraction))
        texts[key] = text

    misses = []
    for key, rows in pending.items():
        cached = _cache.get(key)
        if cached is None:
            misses.append(key)
            continue
        for index, extraction in rows:
            outcomes[index] = _math_outcome(extraction, cached, "cache")
    results = _run_math_verify([(key[0], texts[key], key[2]) for key in misses], settings)
    for key, result in zip(misses, results, strict=True):
        _cache.put(key, result)
        for position, (index, extraction) in enumerate(pending[key]):
            outcomes[index] = _math_outcome(extraction, result, "math_verify" if position == 0 else "cache")
    return outcomes


# Math-Verify work: (cache key, the text it parses, the extraction to report).
_Work = tuple[tuple[str, str, str], str, Any]


def _judge_cheaply(
    answer: str, reference: str, settings: MathSettings
) -> tuple[Outcome | None, _Work | None]:
    if not answer.strip():
        return Outcome(None, None, None, None, "incorrect", "no_answer", "cheap"), None
    reference = reference_answer(reference)
    kind = reference_kind(reference)
    if kind == "choice":
        found = extract_choice(answer)
        expected = choice_letter(reference)
        verdict = "correct" if found is not None and found.answer == expected else "incorrect"
        return _outcome(found, verdict, "choice"), None
    found = extract_final_answer(answer)
    if found is not None and found.method == "phrase" and kind == "math" and _only_words(found.answer):
        found = None  # "our answer is correct": a word where a math answer belongs; Math-Verify scans instead
    if kind == "text":
        expected = text_key(reference)
        equal = (found is not None and text_key(found.answer) == expected) or text_key(answer) == expected
        return _outcome(found, "correct" if equal else "incorrect", "text"), None
    if found is None:
        # The key holds a digest of the scanned tail, not the tail: cache entries stay small.
        tail = answer[-settings.scan_chars :]
        digest = hashlib.blake2b(tail.encode(), digest_size=16).hexdigest()
        return None, (("scan", digest, light_normalize(reference)), tail, None)
    if len(found.answer) > settings.max_answer_chars:
        # Far longer than any final answer: not worth a parser's time (and a likely pathological input).
        return _outcome(found, "error", "math_verify"), None
    cheap = cheap_math_verdict(found.answer, reference)
    if cheap is not None:
        equal, verifier = cheap
        return _outcome(found, "correct" if equal else "incorrect", verifier), None
    answer_key = light_normalize(found.answer)
    return None, (("expr", answer_key, light_normalize(reference)), answer_key, found)


def _only_words(text: str) -> bool:
    cleaned = unwrap_text(strip_math_delimiters(text)).strip()
    return bool(_TEXT_REFERENCE.fullmatch(cleaned)) and reference_kind(cleaned) == "text"


def reference_answer(reference: str) -> str:
    """The answer a reference states: the content of its last box when it has one, else all of it."""
    box = last_boxed(reference) if "box" in reference else None
    return box.answer if box is not None else reference.strip()


def _outcome(found: Any, verdict: str, verifier: str, path: str = "cheap") -> Outcome:
    if found is None:
        return Outcome(None, None, None, None, verdict, verifier, path)
    return Outcome(found.answer, found.start, found.end, found.method, verdict, verifier, path)


def _math_outcome(extraction: Any, result: tuple[str, str | None], path: str) -> Outcome:
    verdict, scanned = result
    if extraction is not None:
        return _outcome(extraction, verdict, "math_verify", path)
    return Outcome(scanned, None, None, "scan" if scanned else None, verdict, "math_verify", path)


def _run_math_verify(
    keys: list[tuple[str, str, str]], settings: MathSettings
) -> list[tuple[str, str | None]]:
    """Math-Verify results for (mode, text, reference) items, in order; a lost chunk is `error`."""
    if not keys:
        return []
    # Same reference side by side: a worker parses it once for the whole run of rows.
    order = sorted(range(len(keys)), key=lambda i: (keys[i][2], keys[i][1]))
    items = [(keys[i][0], keys[i][1], keys[i][2], settings.timeout_s) for i in order]
    size = process_pool.pool_size()
    # With a pool, chunks no smaller than a quarter of the items keep map_chunks off its inline
    # shortcut: inline here would be a Sail thread, where Math-Verify's signal timeouts cannot run.
    chunk = max(1, min(settings.chunk_size, math.ceil(len(items) / size))) if size else settings.chunk_size
    results = process_pool.map_chunks(
        math_verify_work,
        items,
        initializer=warm_up,
        chunk_size=chunk,
        chunk_timeout_s=settings.chunk_timeout_s,
    )
    ordered: list[tuple[str, str | None]] = [("error", None)] * len(keys)
    for position, index in enumerate(order):
        result = results[position]
        ordered[index] = result if result is not None else ("error", None)
    return ordered
