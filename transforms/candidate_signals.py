"""Every per-candidate text signal, computed in plain Python for one chunk of rows.

This is the work function ``transforms/annotate.py`` sends through
``process_pool.map_chunks``: module-level, picklable, a list of rows in and a
list of equal length out. It measures and never decides: thresholds live in
``decide_annotate``. ``signal_spans`` holds every place a reason could point
at (foreign paragraphs, code blocks, the longest paragraph, the longest
repeated span, the answer); the decision keeps those whose reason fired.

``paragraph_chars`` keeps the length of every reasoning paragraph, so that the
mix scores cold-start readability (at its own threshold) from a few integers
instead of reading the reasoning text again.

Span offsets are character offsets into ``reasoning`` or into ``answer``;
``detail`` starts with the field's name (``reasoning: ...``/``answer: ...``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from sftmix.transforms import code_blocks, language, paragraphs, repetition, think_split
from sftmix.transforms.language import LanguageSettings, TextLanguage


@dataclass(frozen=True)
class SignalSettings:
    """What the signal pass needs (picklable: it travels to pool workers)."""

    model_path: str | None = None
    language: LanguageSettings = field(default_factory=LanguageSettings)
    ngram: int = 10
    think_tags: tuple[tuple[str, str], ...] = think_split.DEFAULT_THINK_TAGS
    answer_wrappers: tuple[tuple[str, str], ...] = think_split.DEFAULT_ANSWER_WRAPPERS


TAIL_CHARS = 200

# (name, kind) of each value a row's signal tuple holds, in order; annotate.py maps kinds to Arrow types.
SIGNAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("reasoning", "string"),
    ("answer", "string"),
    ("think_format", "string"),
    ("think_blocks", "int"),
    ("reasoning_chars", "int"),
    ("answer_chars", "int"),
    ("reasoning_tokens", "int"),
    ("answer_tokens", "int"),
    ("target_language", "string"),
    ("reasoning_language", "string"),
    ("reasoning_language_score", "float"),
    ("reasoning_letters", "int"),
    ("reasoning_foreign_share", "float"),
    ("reasoning_script_share", "float"),
    ("foreign_language", "string"),
    ("answer_language", "string"),
    ("answer_language_score", "float"),
    ("answer_letters", "int"),
    ("answer_in_target", "bool"),
    ("answer_foreign_share", "float"),
    ("answer_script_share", "float"),
    ("scripts", "scripts"),
    ("code_blocks", "int"),
    ("unfenced_code_blocks", "int"),
    ("code_lines", "int"),
    ("code_line_share", "float"),
    ("code_language", "string"),
    ("paragraphs", "int"),
    ("paragraph_chars", "ints"),
    ("longest_paragraph_chars", "int"),
    ("longest_paragraph_tokens", "int"),
    ("repetition_share", "float"),
    ("longest_repeat_chars", "int"),
    ("max_ngram_repeats", "int"),
    ("response_hash", "long"),
    ("signal_spans", "spans"),
    ("annotate_error", "string"),
)


def estimate_tokens(text: str) -> int:
    """A fast token estimate: ~4 ASCII characters per token, fewer for multi-byte scripts.

    Each extra UTF-8 byte adds a quarter token: ~0.75 tokens per CJK character,
    ~0.5 per Cyrillic letter, close to BPE vocabularies of the R1 family.
    """
    if not text:
        return 0
    extra = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return (len(text) + extra + 3) // 4


def warm_up() -> None:
    """Pool initializer: load the bundled model once per worker."""
    language.load_model(None)


SPLIT_FIELDS = 4  # reasoning, answer, think_format, think_blocks: computed where the rows are


def signals_for_rows(
    items: Sequence[tuple[str | None, str | None, str | None]], settings: SignalSettings
) -> list:
    """Every signal of (completion, reasoning_content, target) rows."""
    out = []
    for completion, reasoning_content, target in items:
        split = think_split.split_think(
            completion, reasoning_content, settings.think_tags, settings.answer_wrappers
        )
        head = (split.reasoning, split.answer, split.think_format, split.think_blocks)
        out.append(head + text_signals_for_rows([(split.reasoning, split.answer, target)], settings)[0])
    return out


def text_signals_for_rows(
    items: Sequence[tuple[str, str, str | None]], settings: SignalSettings
) -> list[tuple]:
    """The signals after the split, of (reasoning, answer, target) rows: the pool's work function.

    The split runs in the engine's process (a few string searches) so the pool never ships the
    reasoning and answer back: only figures and spans cross the process boundary.
    """
    model = language.load_model(settings.model_path)
    out = []
    for reasoning, answer, target in items:
        try:
            out.append(text_signals(model, reasoning, answer, target, settings))
        except Exception as error:  # noqa: BLE001 - one odd row must not fail the stage; it is flagged
            out.append(error_signals(f"{type(error).__name__}: {error}"[:500]))
    return out


def error_signals(message: str) -> tuple:
    values: list = [None] * (len(SIGNAL_FIELDS) - SPLIT_FIELDS)
    values[-1] = message
    return tuple(values)


def signals_for_row(
    model: object,
    completion: str | None,
    reasoning_content: str | None,
    target_language: str | None,
    settings: SignalSettings,
) -> tuple:
    split = think_split.split_think(
        completion, reasoning_content, settings.think_tags, settings.answer_wrappers
    )
    head = (split.reasoning, split.answer, split.think_format, split.think_blocks)
    return head + text_signals(model, split.reasoning, split.answer, target_language, settings)


def text_signals(
    model: object, reasoning: str, answer: str, target_language: str | None, settings: SignalSettings
) -> tuple:
    target = language.primary_tag(target_language)
    spans: list[tuple[str, int, int, str]] = []

    code_r = code_blocks.find_code(reasoning)
    code_a = code_blocks.find_code(answer)
    for field_name, figures in (("reasoning", code_r), ("answer", code_a)):
        spans.extend(("code_block", s, e, f"{field_name}: {d}") for s, e, d in figures.blocks)

    paragraph_spans = paragraphs.paragraph_spans(reasoning)
    prose = [(s, e) for s, e in paragraph_spans if not paragraphs.inside_any(s, e, code_r.fenced_regions)]
    longest = max(prose, key=lambda se: (se[1] - se[0], -se[0]), default=(0, 0))
    longest_chars = longest[1] - longest[0]
    if longest_chars:
        spans.append(
            (
                "long_paragraph",
                longest[0],
                longest[1],
                f"reasoning: paragraph {paragraph_spans.index(longest)}, {longest_chars} chars",
            )
        )

    reasoning_lang, script_totals = _reasoning_language(
        model, reasoning, paragraph_spans, prose, target, settings, spans, code_r.code_lines > 0
    )
    answer_lang = language.analyse_text(model, answer, target, settings.language, code_a.code_lines > 0)
    _add_scripts(script_totals, answer_lang)
    if answer_lang.foreign_letters or answer_lang.foreign_script_letters:
        share = max(answer_lang.foreign_letters, answer_lang.foreign_script_letters) / max(
            1, answer_lang.letters
        )
        spans.append(
            (
                "mixed_language",
                0,
                len(answer),
                f"answer: {answer_lang.foreign_label or 'foreign script'} "
                f"{answer_lang.foreign_score:.2f}, {min(1.0, share):.0%} of letters",
            )
        )
    answer_in_target = None
    if target and answer_lang.label:
        answer_in_target = answer_lang.label in language.accepted_labels(target)
        if not answer_in_target:
            spans.append(
                (
                    "wrong_language",
                    0,
                    len(answer),
                    f"answer: {answer_lang.label} {answer_lang.score:.2f}, expected {target}",
                )
            )

    rep = _repetition(reasoning, answer, settings.ngram, spans)
    # Where a cut generation ends: the answer's tail, or the reasoning's when no answer began.
    tail_field, tail = ("answer", answer) if answer else ("reasoning", reasoning)
    if tail:
        spans.append(
            (
                "truncated",
                max(0, len(tail) - TAIL_CHARS),
                len(tail),
                f"{tail_field}: the last {min(len(tail), TAIL_CHARS)} characters",
            )
        )
    code_lines = code_r.code_lines + code_a.code_lines
    lines = code_r.lines + code_a.lines
    longest_text = reasoning[longest[0] : longest[1]]
    return (
        len(reasoning),
        len(answer),
        estimate_tokens(reasoning),
        estimate_tokens(answer),
        target,
        reasoning_lang.label or None,
        round(reasoning_lang.score, 4),
        reasoning_lang.letters,
        _share(reasoning_lang.foreign_letters, reasoning_lang.letters, target),
        _share(reasoning_lang.foreign_script_letters, reasoning_lang.script_letters, target),
        reasoning_lang.foreign_label or answer_lang.foreign_label or None,
        answer_lang.label or None,
        round(answer_lang.score, 4),
        answer_lang.letters,
        answer_in_target,
        _share(answer_lang.foreign_letters, answer_lang.letters, target),
        _share(answer_lang.foreign_script_letters, answer_lang.script_letters, target),
        sorted(script_totals.items()),
        code_r.fenced_blocks + code_a.fenced_blocks,
        sum(1 for b in code_r.blocks + code_a.blocks if not b[2].startswith("fenced")),
        code_lines,
        round(code_lines / lines, 4) if lines else 0.0,
        code_r.language or code_a.language or None,
        len(paragraph_spans),
        [end - start for start, end in paragraph_spans],
        longest_chars,
        estimate_tokens(longest_text),
        rep[0],
        rep[1],
        rep[2],
        rep[3],
        spans,
        None,
    )


def _share(part: int, whole: int, target: str | None) -> float | None:
    if target is None:
        return None
    return round(part / whole, 4) if whole else 0.0


def _add_scripts(totals: dict[str, int], figures: TextLanguage) -> None:
    if figures.scripts is None:
        if figures.script_letters:
            totals["Latin"] = totals.get("Latin", 0) + figures.script_letters
        return
    for name, count in figures.scripts.items():
        totals[name] = totals.get(name, 0) + count


def _reasoning_language(
    model: object,
    reasoning: str,
    all_spans: list[tuple[int, int]],
    prose: list[tuple[int, int]],
    target: str | None,
    settings: SignalSettings,
    spans: list[tuple[str, int, int, str]],
    code_lines: bool,
) -> tuple[TextLanguage, dict[str, int]]:
    """Per paragraph language of the reasoning, summed; a span per paragraph with foreign letters."""
    total = TextLanguage()
    script_totals: dict[str, int] = {}
    labels: dict[str, float] = {}
    foreign: dict[str, float] = {}
    texts = [reasoning[start:end] for start, end in prose]
    per_paragraph = language.analyse_texts(model, texts, target, settings.language, code_lines)
    for (start, end), figures in zip(prose, per_paragraph, strict=True):
        _add_scripts(script_totals, figures)
        total.letters += figures.letters
        total.foreign_letters += figures.foreign_letters
        total.script_letters += figures.script_letters
        total.foreign_script_letters += figures.foreign_script_letters
        if figures.label:
            labels[figures.label] = labels.get(figures.label, 0.0) + figures.letters
            total.score += figures.score * figures.letters
        if figures.foreign_label:
            foreign[figures.foreign_label] = foreign.get(figures.foreign_label, 0.0) + figures.foreign_letters
        if figures.foreign_letters or figures.foreign_script_letters:
            index = all_spans.index((start, end))
            share = max(figures.foreign_letters, figures.foreign_script_letters) / max(1, figures.letters)
            what = (
                f"{figures.foreign_label} {figures.foreign_score:.2f}"
                if figures.foreign_label
                else "foreign script "
                + ",".join(
                    sorted(
                        s for s in (figures.scripts or {}) if s not in language.expected_scripts(target or "")
                    )
                )
            )
            spans.append(
                (
                    "mixed_language",
                    start,
                    end,
                    f"reasoning: paragraph {index}, {what}, {min(1.0, share):.0%} of letters",
                )
            )
    if labels:
        total.label = max(labels.items(), key=lambda kv: (kv[1], kv[0]))[0]
        total.score = total.score / max(1, total.letters)
    if foreign:
        total.foreign_label = max(foreign.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return total, script_totals


def _repetition(
    reasoning: str, answer: str, n: int, spans: list[tuple[str, int, int, str]]
) -> tuple[float, int, int, int]:
    """(duplicate share, longest repeat, max repeats, response hash); spans get the repeats' places.

    The response hash joins the content hashes of reasoning and answer (non-space characters, ASCII
    case folded; ``repetition.measure``): dedup's ``duplicate_responses`` compares it across prompts
    instead of normalizing every selected text again. 0 when neither has a non-space character.
    """
    share = 0.0
    longest = 0
    repeats = 0
    content = []
    for field_name, text in (("reasoning", reasoning), ("answer", answer)):
        figures = repetition.measure(text, n)
        content.append(figures.content_hash)
        share = max(share, figures.duplicate_share)
        repeats = max(repeats, figures.max_repeats)
        if figures.longest_chars > longest:
            longest = figures.longest_chars
        if figures.end > figures.start:
            spans.append(
                (
                    "repetition",
                    figures.start,
                    figures.end,
                    f"{field_name}: {figures.longest_chars} chars restate earlier text, "
                    f"{figures.duplicate_share:.0%} duplicate {n}-grams, "
                    f"most frequent {n}-gram x{figures.max_repeats}",
                )
            )
    return round(share, 4), longest, repeats, response_hash(content[0], content[1])


def response_hash(reasoning_hash: int, answer_hash: int) -> int:
    """One signed 64-bit hash of a (reasoning, answer) pair of content hashes; 0 for no content."""
    if not reasoning_hash and not answer_hash:
        return 0
    digest = hashlib.blake2b(struct.pack("<qq", reasoning_hash, answer_hash), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1
