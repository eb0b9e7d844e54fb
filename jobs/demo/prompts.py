"""Reasoning prompts (math, code, STEM multiple choice, logic) and the demo benchmark.

Prompts are several sentences drawn from many templates whose slots sit at
most a few words apart, filled from a 2,000-word vocabulary, names and
random numbers: two unrelated prompts share almost no word 5-gram, so the
dedup stage sees real near-duplicates only where they were injected.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from . import words
from .math_answers import MathAnswer, draw_answer
from .text import Filler, compiled

MATH_MIN_CHARS, MATH_MAX_CHARS = 150, 600

_CONTEXT = compiled((
    "<name> <verb> <n> <adj> <nouns> at the <noun> fair in <place>.",
    "Each <noun> in the <adj> <noun> holds <m> <nouns>, and <name> <verb> all of them.",
    "During <aadj> <noun> session, <name> and <name> <verb> the <nouns> into <m> equal groups.",
    "The <noun> behind the <adj> <noun> is <N> <nouns> wide.",
    "On Monday, <name> <verb> <n> <nouns> and <adv> <verb> another <m>.",
    "<Aadj> <noun> costs <d> dollars at the <adj> <noun> shop in <place>.",
    "The <noun> club of <name> <verb> <N> <nouns> last season.",
    "There are <n> <adj> <nouns> and <n> <adj> <nouns> in the <noun>.",
    "The <noun> of the <adj> <noun> grows by <m> <nouns> every week.",
    "<name> <adv> <verb> <anoun> of <n> <nouns> for the <adj> <noun>.",
    "In <place>, the <adj> <noun> <verb> <N> visitors over <m> weeks.",
    "<name> keeps <n> <nouns> in <anoun> and <n> more in <anoun>.",
    "<Anoun> game uses <m> <adj> <nouns> and a board with <n> squares.",
    "The <adj> <noun> team <verb> <n> <nouns> before the <noun> closed.",
    "Two <nouns>, one <adj> and one <adj>, lie on <anoun> of length <n>.",
    "<name> <verb> the <nouns> by <noun>, starting from the <adj> end.",
    "Every <adj> <noun> near the <noun> <verb> exactly <m> <adj> <nouns>.",
    "<name> and <name> share <N> <nouns>, but <name> <verb> <n> of them.",
    "The <adj> <noun> in <place> opens <m> <nouns> per <noun>.",
    "Last <noun>, a <noun> <verb> <n> <nouns> from the <adj> <noun>.",
))

_GIVENS = compiled((
    "Let $f(x) = <m>x^2 + <n>x - <n>$.",
    "Consider the sequence with $a_1 = <m>$ and $a_{n+1} = <m>a_n + <n>$.",
    "Let $<v>$ and $<v>$ be real numbers with $<v> + <v> = <n>$ and $<v><v> = <n>$.",
    "Suppose that $<expr> = <N>$.",
    "A triangle has sides of length <n>, <n>, and <n>.",
    "A circle of radius <m> is inscribed in a square of side <n>.",
    r"Let $S = \{1, 2, \ldots, <n>\}$.",
    "A fair <m>-sided die is rolled <m> times.",
    "The line through $(<m>, <n>)$ and $(<n>, <m>)$ meets the parabola $y = x^2 - <m>$.",
))

_QUESTIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "integer": compiled((
        "How many <nouns> does <name> have at the end?",
        "What is the remainder when $<N>^{<n>}$ is divided by <m>?",
        "Compute the number of <m>-element subsets of $S$ whose sum is even.",
        "What is the smallest positive integer $n$ such that $<m>n + <n>$ is a multiple of <N>?",
        "Find the value of $f(<m>)$.",
    )),
    "fraction": compiled((
        "What fraction of the <nouns> are <adj>? Express your answer as a common fraction.",
        "What is the probability that both chosen <nouns> are <adj>? Express it as a common fraction.",
    )),
    "decimal": compiled((
        "What is the average number of <nouns> per <noun>? Express your answer as a decimal.",
        "How many kilograms of <nouns> remain? Give your answer as a decimal.",
    )),
    "sqrt": compiled((
        "Find the length of the diagonal of the <adj> <noun>, in simplest radical form.",
        "Find the distance between $(<m>, <n>)$ and $(<n>, <m>)$ in simplest radical form.",
    )),
    "pi": compiled((
        r"What is the area of the <adj> circular <noun>? Express your answer in terms of $\pi$.",
        r"Find the volume of the <adj> <noun>, in terms of $\pi$.",
    )),
    "interval": compiled((
        "Find all real $x$ such that $<expr> \\le <N>$. Express your answer in interval notation.",
        "For which values of $<v>$ is the <adj> <noun> defined? Give your answer as an interval.",
    )),
    "set": compiled((
        "Find all integers $<v>$ satisfying $<eq>$ and $|<v>| \\le <n>$. Give the answer as a set.",
        "List every value of $k$ for which the <adj> <noun> works, as a set.",
    )),
    "tuple": compiled((
        "Solve the system and give the ordered pair $(x, y)$.",
        "Find the coordinates of the point where the <adj> <noun> meets the second line.",
    )),
    "degrees": compiled((
        "What is the measure of angle $<P><P><P>$, in degrees?",
        "Through how many degrees does the <adj> <noun> turn?",
    )),
    "percentage": compiled((
        "By what percent did the number of <nouns> increase?",
        "What percentage of the <nouns> were <adj>?",
    )),
    "text": compiled((
        "Answer with one word: in which direction, or on which day, does the <adj> <noun> end up?",
        "Is the final count of <nouns> even or odd, or can the <noun> never stop? Answer with one word.",
    )),
}

_CODE_RETURNS = compiled((
    "returns the <m> most <adj> ones, ordered by `<key>`",
    "returns a dictionary mapping each `<key>` to how many <nouns> share it",
    "returns the longest run of consecutive <nouns> whose `<key>` keeps increasing",
    "returns the <nouns> sorted by `<key>`, ties broken by `<key2>`",
    "returns the total `<key>` of every <noun> marked as <adj>",
    "returns a new list with duplicate <nouns> removed, keeping the first of each `<key>`",
))

_CODE_DETAILS = compiled((
    "Each <noun> is a dictionary with the keys `<key>`, `<key2>` and `<key3>`.",
    "The input may contain up to <N> <nouns>, so avoid quadratic work.",
    "<name> will call it from <aadj> <noun> service, so it must not modify its argument.",
    "If the list is empty, return an empty result instead of raising.",
    "Raise a `ValueError` when <anoun> has a negative `<key>`.",
    "For example, with <m> <nouns> whose `<key>` values are <n>, <n> and <n>, the answer starts with <n>.",
    "Values of `<key2>` are strings and may repeat; treat them case-sensitively.",
    "Write clean code with type hints and a short docstring.",
))

_STEM_TOPICS = compiled((
    "A <adj> cart of mass <m> kg rolls down a ramp inclined at <n> degrees.",
    "A sample of <adj> gas occupies <d> liters at <N> kelvin.",
    "A copper wire of length <n> m carries a current of <m> amperes.",
    "A <adj> <noun> falls from a height of <n> meters in still air.",
    "A population of <nouns> doubles every <m> hours in a <adj> medium.",
    "An enzyme from the <adj> <noun> is tested at <n> degrees Celsius.",
    "A solution contains <d> grams of salt dissolved in <N> milliliters of water.",
    "A lens with focal length <n> cm forms an image of <anoun>.",
))

_STEM_QUESTIONS = compiled((
    "Which value is closest to the final speed?",
    "What is the pressure after the change, approximately?",
    "Which option gives the correct magnitude of the quantity asked for?",
    "Which of the following is the best estimate?",
    "Which statement about the <adj> result is correct?",
))

_STEM_UNITS = ("m/s", "kPa", "J", "N", "mol", "cm", "s", "g/L")

_LOGIC_SETUPS = compiled((
    "<name>, <name>, <name> and <name> each own a different <noun>: <anoun>, <anoun>, <anoun> and <anoun>.",
    "Four <nouns> stand in a row outside the <adj> <noun> in <place>, each owned by a different friend.",
    "On an island every inhabitant is a knight, who always tells the truth, or a knave, who always lies.",
    "Five <adj> <nouns> are delivered on five consecutive days to <name>, <name> and three neighbors.",
))

_LOGIC_CLUES = compiled((
    "The owner of the <noun> is not <name>.",
    "<name> says that <name> is a knave.",
    "The <adj> <noun> is somewhere to the left of the <noun>.",
    "<name> does not sit next to <name>.",
    "The <noun> arrives the day after the <adj> <noun>.",
    "Exactly one of <name> and <name> is telling the truth.",
    "<name> owns neither the <noun> nor the <noun>.",
))

_LOGIC_QUESTIONS = compiled((
    "Who owns the <noun>?",
    "Which person is the knight?",
    "Who is standing at the far right?",
    "Who receives the <adj> <noun>?",
))


@dataclass(frozen=True)
class CodeTask:
    function_name: str
    argument: str
    keys: tuple[str, str, str]
    behavior: int  # index into _CODE_RETURNS: the solution written for it must match


@dataclass(frozen=True)
class PromptSpec:
    domain: str
    text: str
    answer: MathAnswer | None  # None for code: verified by its tests, not by an answer
    code: CodeTask | None = None


class PromptFactory:
    """Builds one prompt at a time; all randomness comes from the given generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.filler = Filler(rng)

    def _sentences(self, templates: tuple[tuple[str, ...], ...], count: int) -> list[str]:
        return [self.filler.fill(t) for t in self.rng.sample(templates, count)]

    def math(self) -> PromptSpec:
        rng, answer = self.rng, draw_answer(self.rng)
        question = self.filler.fill(rng.choice(_QUESTIONS[answer.kind]))
        given = [self.filler.fill(rng.choice(_GIVENS))] if rng.random() < 0.6 else []
        context = self._sentences(_CONTEXT, rng.randint(2, 5))
        while context and len(" ".join(context + given + [question])) > MATH_MAX_CHARS:
            context.pop()
        while len(" ".join(context + given + [question])) < MATH_MIN_CHARS:
            context.append(self.filler.fill(rng.choice(_CONTEXT)))
        return PromptSpec("math", " ".join(context + given + [question]), answer)

    def code(self) -> PromptSpec:
        rng, f = self.rng, self.filler
        verb, adj, noun = rng.choice(words.VERBS_BASE), rng.choice(words.ADJECTIVES), rng.choice(words.NOUNS)
        name = f"{verb}_{adj}_{words.plural(noun)}"
        k1, k2, k3 = rng.sample(words.NOUNS, 3)
        f.slots.update(key=lambda: k1, key2=lambda: k2, key3=lambda: k3)
        arg = words.plural(rng.choice(words.NOUNS))
        behavior = rng.randrange(len(_CODE_RETURNS))
        returns = f.fill(_CODE_RETURNS[behavior])
        head = f"Write a Python function `{name}({arg})` that takes a list of {arg} and {returns}."
        text = " ".join([head] + self._sentences(_CODE_DETAILS, rng.randint(2, 4)))
        return PromptSpec("code", text, None, CodeTask(name, arg, (k1, k2, k3), behavior))

    def stem(self) -> PromptSpec:
        rng, f = self.rng, self.filler
        unit = rng.choice(_STEM_UNITS)
        values = rng.sample(range(11, 999), 4)
        options = "\n".join(f"({x}) {v / 10:.1f} {unit}" for x, v in zip("ABCD", values, strict=True))
        letter = rng.choice("ABCD")
        picks = (rng.choice(_STEM_TOPICS), rng.choice(_CONTEXT), rng.choice(_STEM_QUESTIONS))
        body = " ".join(f.fill(t) for t in picks)
        wrong = tuple(x for x in "ABCD" if x != letter)
        return PromptSpec("stem", f"{body}\n\n{options}", MathAnswer("choice", letter, (letter,), wrong))

    def logic(self) -> PromptSpec:
        rng, f = self.rng, self.filler
        people = rng.sample(words.NAMES, 4)
        turn = itertools.count(rng.randrange(4))
        # Rotating through the cast keeps "A does not sit next to A" out of the clues.
        f.slots["name"] = lambda: people[next(turn) % 4]
        try:
            parts = [f.fill(rng.choice(_LOGIC_SETUPS))] + self._sentences(_LOGIC_CLUES, rng.randint(3, 5))
            parts.append(f.fill(rng.choice(_LOGIC_QUESTIONS)))
        finally:
            f.slots["name"] = lambda: rng.choice(words.NAMES)
        answer = MathAnswer("short_text", people[0], (people[0],), tuple(people[1:]))
        return PromptSpec("logic", " ".join(parts), answer)


def benchmark_specs(seed: int, count: int = 50) -> list[tuple[str, PromptSpec]]:
    """The demo benchmark: math-like questions (with answers) that contaminated prompts copy."""
    factory = PromptFactory(random.Random(seed))
    return [(f"demo_bench-{i:03d}", factory.math()) for i in range(count)]
