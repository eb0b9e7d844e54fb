"""Sentence templates, the slot filler, and the paragraph pools reasoning is assembled from.

Speed comes from doing the expensive part once: every domain gets a pool of
a few thousand filled-in paragraphs (200-1,150 chars, built from ~5,000
distinct sentences), and a chain of thought is a run of distinct paragraphs
from that pool (a repeated paragraph would look like the `repetition` defect).
Templates write slots as ``<slot>``: LaTeX keeps its braces untouched.
"""

from __future__ import annotations

import array
import bisect
import functools
import itertools
import random
import re
from collections.abc import Callable, Sequence

from . import words

POOL_PARAGRAPHS = 4096
POOL_SENTENCES = 6000
MAX_PARAGRAPH_CHARS = 1150  # the long_paragraph defect starts at 3,000; clean text stays well below
_POOL_SEED = 20_240_607  # pools are seed-independent so every run reuses one cached build

_SLOT = re.compile(r"<([a-zA-Z0-9]+)>")

GENERIC_THOUGHTS = (
    "Okay, let me think about this carefully.",
    "Wait, that does not look right.",
    "Hmm, let me double-check that step.",
    "Let me go back and reconsider the setup.",
    "That seems consistent with what I found before.",
    "Actually, I should be more careful here.",
    "So far so good.",
    "Let me verify this with a quick sanity check.",
    "Alternatively, there might be a cleaner approach.",
    "I think I see where this is going.",
    "But wait, I need to make sure nothing is counted twice.",
    "Let me try a different angle.",
    "Okay, that checks out.",
    "Hold on, I should re-read the question.",
    "Right, so the next step is clear.",
    "Let me summarize what I have so far.",
)

GENERIC_TEMPLATES = (
    "Let me restate the <adj> part of the question in my own words before going on.",
    "I keep thinking about the <noun>, but it is probably a distraction here.",
    "The key point is that the <adj> <noun> does not change the count.",
    "Maybe the <noun> is just there to make the <adj> case harder to see.",
    "Let me organize this like a <noun> list so that I do not lose track.",
    "It would help to name things: call the first quantity $<v>$ and the second $<v>$.",
    "Before committing, I will test the idea on a case with <m> <nouns>.",
    "This is similar to a <adj> <noun> problem I have seen, though the details differ.",
)

MATH_TEMPLATES = (
    "Let $<v>$ be the number of <nouns> that <name> <verb> on the first day.",
    "If $<v> = <n>$, then $<expr>$ equals <n>, which is too small.",
    "Substituting $<v> = <n>$ into the equation gives $<eq>$.",
    "Then $<frac> + <frac>$ simplifies, and the ratio still looks fine.",
    r"We know that $\sum_{k=1}^{<n>} k = <N>$, which matches the count of <nouns>.",
    r"Taking the square root, $\sqrt{<N>}$ is between <n> and <n>.",
    r"The discriminant is $b^2 - 4ac = <n>^2 - 4 \cdot <m> \cdot <m>$, which should be non-negative.",
    r"So the <noun> contributes $<n> \times <n> = <N>$ to the total.",
    "Now $<expr>$ must be divisible by <m>, so $<v>$ has to be even.",
    "Multiplying both sides by <m>, we get $<eq>$.",
    "Hmm, that gives $<v> = <d>$, which is not an integer, so something is off.",
    r"The probability of picking a <adj> <noun> is $\frac{<n>}{<N>}$.",
    "By symmetry, the <adj> case and the <adj> case contribute equally.",
    r"Using $\binom{<n>}{<m>}$, there are <N> ways to choose the <nouns>.",
    r"The area of the <adj> region is $<n>\pi - <n>$, if I set it up correctly.",
    "Let me write $<v> = <m>k + <m>$ for some integer $k$.",
    r"Then $<v>^2 = <N>$, so $<v> = \pm\sqrt{<N>}$.",
    "Adding the two equations gives $<m><v> = <N>$.",
    r"So the average is $\frac{<N>}{<m>} \approx <d>$.",
    r"The angle at $<P>$ is $<n>^\circ$, so the remaining angle is $<n>^\circ$.",
    r"Since $\gcd(<n>, <n>) = <m>$, the fraction reduces nicely.",
    "Therefore $f(<m>) = <expr>$, and plugging in gives <N>.",
    "Checking the boundary case $<v> = 0$, the expression becomes $<n>$.",
    "I will count the <adj> <nouns> first and then subtract the overlap.",
    "The sequence goes <n>, <n>, <n>, and the differences are not constant.",
    "That means $<v>$ lies in the interval $(<n>, <N>)$.",
    "If <name> <verb> <m> <nouns> each hour, then after <m> hours that is <N> <nouns>.",
    r"The total cost is $<m> \cdot <d> = <d>$ dollars.",
    r"Since $\log_2 <N>$ is roughly <d>, the estimate seems reasonable.",
    "We can factor it as $(<v> - <m>)(<v> + <m>) = 0$.",
    "Hmm, wait, I dropped a factor of <m> somewhere.",
    "Expanding $(<v> + <m>)^2$ gives $<v>^2 + <n><v> + <n>$.",
    "So modulo <m>, the remainder cycles with period <m>.",
    r"In terms of $<g>$, we have $\sin <g> = \frac{<m>}{<n>}$.",
    r"The <noun> question reduces to counting lattice points with $<v> + <v> \le <n>$.",
    "Since each <noun> holds <m> <nouns>, the total is a multiple of <m>.",
    r"Let me double-check: $<frac> \cdot <m> = \frac{<n>}{<m>}$.",
    r"The sum telescopes, leaving $1 - \frac{1}{<n>}$.",
    "So $<v>$ and $<v>$ satisfy $<eq>$, and only one solution is positive.",
    r"Using the Pythagorean theorem, the hypotenuse is $\sqrt{<n>^2 + <n>^2}$.",
    r"The expected value is $\sum_{i=1}^{<m>} i \cdot p_i$, which I will compute term by term.",
    "Let me tabulate the first few values of $f$ to look for a pattern.",
    r"That contradicts $<v> \ge <m>$, so this case is impossible.",
    "The remaining <nouns> can be arranged in $<m>!$ ways.",
    r"Rewriting with a common denominator gives $\frac{<v> + <m>}{<n>}$.",
    r"Applying the inequality $\frac{a + b}{2} \ge \sqrt{ab}$ gives a lower bound of <m>.",
)

CODE_TEMPLATES = (
    "I need to handle the case where the input list of <nouns> is empty.",
    "A dictionary keyed by <noun> name would make each lookup constant time.",
    r"Sorting first costs $O(n \log n)$, which is acceptable for <N> <nouns>.",
    "Let me trace the example with <m> items to make sure the loop terminates.",
    "The helper should return early when the <noun> is missing.",
    "Wait, an off-by-one error could appear when the index reaches <n>.",
    "Using a set for the <nouns> already seen avoids quadratic time.",
    "A two-pointer approach works too: move the left pointer when the sum exceeds <n>.",
    "The function needs to <verbb> each <noun> and then <verbb> the results.",
    "Recursion would work, but the depth could reach <N>, so an iterative version is safer.",
    "For an input of <m> <nouns>, the expected output should be <n>.",
    "The running time is linear because every <noun> is visited once.",
    "Edge cases to remember: negative values, duplicates, and a single <noun>.",
    "I will call the accumulator `<snake>` so the intent stays clear.",
    "The spec does not say whether the input can be modified, so I will copy it first.",
    "A heap keeps the <m> largest values in $O(n \\log k)$ time.",
    "If two <nouns> tie, the earlier one should win to keep the order stable.",
    "Memoizing the recursive call turns the exponential search into $O(n^2)$.",
    "The tests probably include a case with <N> elements, so performance matters.",
    "Reading the statement again, the result must keep the original order of <nouns>.",
    "I could <verbb> the data in one pass and <verbb> it in a second pass.",
    "Integer overflow is not an issue in Python, but the intermediate list could get large.",
    "Let me think about what happens when every <noun> has the same <noun>.",
    "The name `<snake>` suggests the function should return a new list.",
    "A sliding window of size <m> gives the answer without nested loops.",
)

STEM_TEMPLATES = (
    r"The force on the <noun> is $F = ma = <m> \times <d> = <d>$ newtons.",
    "Converting <n> kilometers per hour to meters per second gives about <d> m/s.",
    "The molar mass of the compound is roughly <d> grams per mole.",
    r"Energy is conserved, so $\frac{1}{2}mv^2 = mgh$ and $v = \sqrt{2gh}$.",
    "At <N> kelvin the gas behaves almost ideally, so $PV = nRT$ applies.",
    "Option (<letter>) can be ruled out because the units do not match.",
    r"The half-life is <m> years, so after <n> years about $\frac{1}{<m>}$ remains.",
    "The cell would need <m> copies of the <adj> gene for this trait to appear.",
    r"Ohm's law gives $I = \frac{V}{R} = \frac{<n>}{<m>}$ amperes.",
    r"The wavelength is $\lambda = \frac{c}{f}$, which is about <d> meters.",
    "Balancing the reaction needs <m> molecules of oxygen on the left side.",
    "The <adj> sample has a density of <d> grams per cubic centimeter.",
    r"The pH is $-\log_{10}[\mathrm{H}^+]$, which comes out near <m>.",
    "Momentum is conserved in the collision, so $m_1 v_1 = (m_1 + m_2) v$.",
    "Option (<letter>) has the right order of magnitude, so it is a strong candidate.",
    "The enzyme works best near <n> degrees Celsius, so the <adj> trial is slower.",
    r"The period of the pendulum is $T = 2\pi\sqrt{L/g}$, about <d> seconds.",
    "Heat capacity times the temperature change gives <N> joules.",
    "Comparing the options, (<letter>) is the only one consistent with the data on the <noun>.",
    "The resistance doubles when the <noun> is twice as long, which rules out one choice.",
)

LOGIC_TEMPLATES = (
    "Suppose <name> is telling the truth; then <name> must be lying.",
    "If <name> sits next to <name>, then the <adj> seat must be taken by <name>.",
    "That leads to a contradiction, so the assumption was wrong.",
    "Let me list the possible orders: <name>, <name>, <name>.",
    "The clue about the <adj> <noun> rules out two of the arrangements.",
    "Case 1: <name> owns the <noun>. Then <name> cannot own the <noun>.",
    "So only one configuration satisfies all <m> conditions.",
    "Checking clue <m> again, it only says that <name> is not first.",
    "If the <noun> is in the <adj> house, then <name> lives in the last house.",
    "The statements of <name> and <name> cannot both be true.",
    "Either <name> or <name> took the <noun>, and the clues eliminate one of them.",
    "Working backwards from clue <m>, the <noun> must be on the left.",
    "A knight always tells the truth and a knave always lies, so the claims split neatly.",
    "Now the grid has only <m> empty cells, which makes the rest forced.",
    "Assume <name> is second; then clue <m> forces <name> into the first position.",
    "That leaves the <adj> <noun> for <name>, which fits every clue.",
)

PLAN_TEMPLATES = (
    "The user wants something about <aadj> <noun>, so I should keep it concrete.",
    "A warm tone fits best, and the length should stay moderate.",
    "I will start with the main point and then add one supporting detail.",
    "Mentioning the <noun> early makes the answer feel specific.",
    "Short sentences will keep it easy to read aloud.",
    "I should end on a hopeful note rather than a summary.",
)

FACT_PLAN_TEMPLATES = (
    "The question asks for a basic fact, so one clear sentence is enough.",
    "I am confident about this one, but let me recall it carefully.",
    "No calculation is needed here.",
    "The context about the <noun> does not change the answer.",
    "I should state the fact directly without hedging.",
)

NARRATIVE_TEMPLATES = (
    "<name> <verb> the <adj> <noun> just before the <noun> began.",
    "Everyone in <place> remembered the <adj> <noun> that <name> <verb> that spring.",
    "The <noun> was <adj>, and the <nouns> around it looked <adj> in the evening light.",
    "By the time <name> <verb> the <noun>, the <adj> <noun> had already left.",
    "It was a <adj> <noun>, full of <nouns> and quiet <nouns>.",
    "<name> smiled, because the <noun> finally felt <adj>.",
    "Nobody expected the <adj> <noun> to matter, yet it changed the whole <noun>.",
    "Later, <name> <verb> a note about the <noun> and left it on the <noun>.",
    "The <nouns> of <place> are <adj> in winter and <adj> in summer.",
    "A <adj> <noun> can turn an ordinary <noun> into something <adj>.",
    "Our <noun> team <verb> every <noun> with <adj> care.",
    "Thank you for the <adj> <noun>; it made the <noun> much easier.",
)


_ARTICLE = re.compile(r"\b([aA]) <(adj|noun)>")


def _compile(template: str) -> tuple[str, ...]:
    """Split a template into alternating literal and slot-name parts ("a <adj>" becomes one slot)."""
    template = _ARTICLE.sub(lambda m: f"<{m.group(1)}{m.group(2)}>", template)
    return tuple(_SLOT.split(template))


def with_article(word: str, capital: bool = False) -> str:
    vowel_sound = word[0] in "aeiou" and not word.startswith(("uni", "use", "usu", "uti", "eu"))
    article = "an" if vowel_sound else "a"
    return f"{article.capitalize() if capital else article} {word}"


_VARIABLES = ("x", "y", "z", "n", "k", "m", "a", "b", "t", "r", "p", "q")
_GREEK = (r"\alpha", r"\beta", r"\theta", r"\phi", r"\gamma")


class Filler:
    """Fills ``<slot>`` templates with vocabulary, numbers and small LaTeX expressions."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        uniform = rng.random

        # random.choice/randint cost ~0.5 us each through _randbelow; slots are filled millions of times.
        def pick(seq: Sequence[str]) -> str:
            return seq[int(uniform() * len(seq))]

        def between(lo: int, hi: int) -> int:
            return lo + int(uniform() * (hi - lo + 1))

        self.pick, self.between = pick, between
        self.slots: dict[str, Callable[[], str]] = {
            "noun": lambda: pick(words.NOUNS),
            "nouns": lambda: words.plural(pick(words.NOUNS)),
            "adj": lambda: pick(words.ADJECTIVES),
            "verb": lambda: pick(words.VERBS_PAST),
            "verbb": lambda: pick(words.VERBS_BASE),
            "adv": lambda: pick(words.ADVERBS),
            "aadj": lambda: with_article(pick(words.ADJECTIVES)),
            "Aadj": lambda: with_article(pick(words.ADJECTIVES), True),
            "anoun": lambda: with_article(pick(words.NOUNS)),
            "Anoun": lambda: with_article(pick(words.NOUNS), True),
            "name": lambda: pick(words.NAMES),
            "place": lambda: pick(words.PLACES),
            "n": lambda: str(between(2, 99)),
            "m": lambda: str(between(2, 12)),
            "N": lambda: str(between(100, 9999)),
            "d": lambda: f"{0.1 + uniform() * 999:.{between(1, 2)}f}",
            "v": lambda: pick(_VARIABLES),
            "g": lambda: pick(_GREEK),
            "P": lambda: chr(between(65, 90)),
            "letter": lambda: pick("ABCD"),
            "snake": lambda: f"{pick(words.NOUNS)}_{pick(words.NOUNS)}",
            "frac": lambda: rf"\frac{{{between(1, 20)}}}{{{between(2, 30)}}}",
            "expr": self.expression,
            "eq": self.equation,
        }

    def expression(self) -> str:
        pick, between = self.pick, self.between
        v, a, b, c = pick(_VARIABLES), between(2, 12), between(1, 20), between(1, 50)
        forms = (
            f"{a}{v}^2 + {b}{v} - {c}",
            rf"\frac{{{v} + {a}}}{{{b}}}",
            rf"\sqrt{{{c}}} + {a}",
            rf"\sum_{{k=1}}^{{{c}}} k^{{2}}",
            f"({v} + {a})({v} - {b})",
            rf"\binom{{{c}}}{{{a}}}",
            rf"{a}^{{{b}}} \bmod {c + 1}",
            rf"\log_{{{a}}} {c}",
            rf"{a}\sqrt{{{b}}} - {c}",
        )
        return pick(forms)

    def equation(self) -> str:
        pick, between = self.pick, self.between
        v, a, b, c = pick(_VARIABLES), between(2, 12), between(1, 40), between(1, 99)
        forms = (f"{a}{v} + {b} = {c}", f"{v}^2 - {a}{v} = {c}", rf"\frac{{{v}}}{{{a}}} = {b}")
        return pick(forms)

    def fill(self, parts: tuple[str, ...]) -> str:
        slots = self.slots
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(slots[parts[i]]())
            out.append(parts[i + 1])
        return "".join(out)

    def sentence(self, template: str) -> str:
        return self.fill(_compile(template))


class ParagraphPool:
    """Pre-built paragraphs of one domain plus the sentences they came from.

    A walk is a contiguous run in one of several shuffled orders of the pool,
    found by bisecting prefix sums: O(log n) per chain instead of a Python
    loop per paragraph. Two chains share a run only if they drew the same
    order and nearby starts (~0.1% of pairs).
    """

    ORDERS = 16

    def __init__(self, rng: random.Random, paragraphs: tuple[str, ...], sentences: tuple[str, ...]) -> None:
        self.paragraphs, self.sentences = paragraphs, sentences
        self.orders: list[tuple[tuple[str, ...], array.array[int]]] = []
        for _ in range(self.ORDERS):
            order = list(paragraphs)
            rng.shuffle(order)
            doubled = tuple(order + order)  # a run may wrap around the end
            prefix = array.array("q", itertools.accumulate((len(p) + 2 for p in doubled), initial=0))
            self.orders.append((doubled, prefix))

    def walk(self, rng: random.Random, target_chars: int) -> list[str]:
        """Distinct paragraphs whose joined length first reaches ``target_chars``."""
        doubled, prefix = self.orders[int(rng.random() * self.ORDERS)]
        size = len(self.paragraphs)
        start = int(rng.random() * size)
        end = bisect.bisect_left(prefix, prefix[start] + target_chars, lo=start + 1, hi=start + size)
        return list(doubled[start:end])

    def run_on(self, rng: random.Random, target_chars: int) -> str:
        """Sentences joined by spaces only: one paragraph of about ``target_chars``."""
        sentences, uniform = self.sentences, rng.random
        parts: list[str] = []
        total = 0
        while total < target_chars:
            sentence = sentences[int(uniform() * len(sentences))]
            parts.append(sentence)
            total += len(sentence) + 1
        return " ".join(parts)


def _build_sentences(rng: random.Random, templates: Sequence[str], count: int) -> tuple[str, ...]:
    filler = Filler(rng)
    compiled = [_compile(t) for t in templates + GENERIC_TEMPLATES]
    made = [filler.fill(rng.choice(compiled)) for _ in range(count)]
    return tuple(dict.fromkeys(made + list(GENERIC_THOUGHTS)))


def _build_paragraph(rng: random.Random, sentences: Sequence[str]) -> str:
    # Typical R1 paragraphs: a few hundred chars, occasionally near a thousand.
    target = min(int(rng.lognormvariate(6.15, 0.45)), 1000)
    parts: list[str] = []
    total = -1
    while total < max(target, 200):
        sentence = rng.choice(sentences)
        if total + 1 + len(sentence) > MAX_PARAGRAPH_CHARS:
            break
        parts.append(sentence)
        total += 1 + len(sentence)
    return " ".join(parts)


def build_pool(seed: int, templates: Sequence[str]) -> ParagraphPool:
    rng = random.Random(seed)
    sentences = _build_sentences(rng, templates, POOL_SENTENCES)
    paragraphs = tuple(_build_paragraph(rng, sentences) for _ in range(POOL_PARAGRAPHS))
    return ParagraphPool(rng, paragraphs, sentences)


REASONING_TEMPLATES: dict[str, tuple[str, ...]] = {
    "math": MATH_TEMPLATES,
    "code": CODE_TEMPLATES,
    "stem": STEM_TEMPLATES + MATH_TEMPLATES[:12],
    "logic": LOGIC_TEMPLATES,
}


@functools.lru_cache(maxsize=1)
def reasoning_pools() -> dict[str, ParagraphPool]:
    """One pool per reasoning domain, built once per process (~0.5 s)."""
    return {d: build_pool(_POOL_SEED + i, t) for i, (d, t) in enumerate(REASONING_TEMPLATES.items())}


def compiled(templates: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(_compile(t) for t in templates)
