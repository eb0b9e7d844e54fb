"""Math reference answers in the LaTeX forms real data sets use, with equivalent and wrong spellings.

A correct candidate often boxes an equivalent but differently written answer
(``0.75`` for ``\\frac{3}{4}``, ``\\left( 2, -1 \\right)`` for ``(2, -1)``), so the
verifier has to compare values, not strings. The equivalent forms are kept
to ones a symbolic checker (Math-Verify) settles: no ``%`` without a
backslash (a LaTeX comment), no brace-less ``\\sqrt`` of a two-digit number.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MathAnswer:
    kind: str
    reference: str  # canonical LaTeX, as the problem's answer field holds it
    correct_forms: tuple[str, ...]  # equivalent spellings, the reference first
    wrong_forms: tuple[str, ...]  # different values
    number: int | float | None = None  # set when the answer field may be a JSON number


def _integer(rng: random.Random) -> MathAnswer:
    roll = rng.random()
    n = rng.randint(0, 100) if roll < 0.6 else rng.randint(101, 5000) if roll < 0.9 else -rng.randint(1, 60)
    wrong = [w for w in (n + rng.choice((-3, -2, -1, 1, 2, 5, 10)), 2 * n + 1, -n - 1) if w != n]
    return MathAnswer("integer", str(n), (str(n), f"{n}.0"), tuple(str(w) for w in wrong), n)


def _terminating_decimal(p: int, q: int) -> str | None:
    for digits in (1, 2, 3):
        if (p * 10**digits) % q == 0:
            return f"{p / q:.{digits}f}"
    return None


def _fraction(rng: random.Random) -> MathAnswer:
    q = rng.randint(2, 12)
    p = rng.choice([p for p in range(1, 3 * q) if math.gcd(p, q) == 1 and p % q])
    sign = "-" if rng.random() < 0.15 else ""
    forms = [rf"{sign}\frac{{{p}}}{{{q}}}", rf"{sign}\dfrac{{{p}}}{{{q}}}", f"{sign}{p}/{q}"]
    if p < 10 and q < 10:
        forms.append(rf"{sign}\dfrac{p}{q}")
    decimal = _terminating_decimal(p, q)
    if decimal:
        forms.append(sign + decimal)
    wrong = (rf"{sign}\frac{{{q}}}{{{p}}}", rf"{sign}\frac{{{p + 1}}}{{{q + 1}}}",
             rf"\frac{{{p}}}{{{q + 2}}}")
    return MathAnswer("fraction", forms[0], tuple(forms), wrong)


def _decimal(rng: random.Random) -> MathAnswer:
    tenths = rng.randint(11, 998)
    while tenths % 10 == 0:
        tenths = rng.randint(11, 998)
    value = tenths / 10
    g = math.gcd(tenths, 10)
    forms = (f"{value:.1f}", f"{value:.2f}", rf"\frac{{{tenths // g}}}{{{10 // g}}}")
    wrong = (f"{value + 0.1:.1f}", f"{value * 10:.1f}", f"{value - 1:.2f}")
    return MathAnswer("decimal", forms[0], forms, wrong, value)


def _sqrt(rng: random.Random) -> MathAnswer:
    a, b = rng.randint(2, 9), rng.choice((2, 3, 5, 6, 7, 10, 11, 13, 14, 15))
    forms = [rf"{a}\sqrt{{{b}}}", rf"\sqrt{{{a * a * b}}}", rf"{a} \sqrt{{{b}}}"]
    if b < 10:
        forms.append(rf"{a}\sqrt {b}")
    wrong = (rf"{a + 1}\sqrt{{{b}}}", rf"{a}\sqrt{{{b + 1}}}", rf"\sqrt{{{a * b}}}")
    return MathAnswer("sqrt", forms[0], tuple(forms), wrong)


def _pi(rng: random.Random) -> MathAnswer:
    a = rng.randint(2, 30)
    if rng.random() < 0.5:
        forms = (rf"{a}\pi", rf"{a} \pi", rf"\pi \cdot {a}")
        wrong = (rf"{a + 1}\pi", rf"{2 * a}\pi", rf"\frac{{{a}\pi}}{{2}}")
        return MathAnswer("pi", forms[0], forms, wrong)
    b = rng.choice([b for b in range(2, 9) if math.gcd(a, b) == 1])
    forms = (rf"\frac{{{a}\pi}}{{{b}}}", rf"\frac{{{a}}}{{{b}}}\pi", rf"\dfrac{{{a}\pi}}{{{b}}}")
    wrong = (rf"\frac{{{a}\pi}}{{{b + 1}}}", rf"\frac{{{a + 1}\pi}}{{{b}}}", rf"{a}\pi")
    return MathAnswer("pi", forms[0], forms, wrong)


def _interval(rng: random.Random) -> MathAnswer:
    hi = rng.randint(-5, 20)
    if rng.random() < 0.3:
        forms = (rf"(-\infty, {hi})", rf"(-\infty,{hi})", rf"\left(-\infty, {hi}\right)")
        wrong = (rf"(-\infty, {hi}]", rf"({hi}, \infty)", rf"(-\infty, {hi + 1})")
        return MathAnswer("interval", forms[0], forms, wrong)
    lo = hi - rng.randint(1, 12)
    left, right = rng.choice("(["), rng.choice(")]")
    flip = {"(": "[", "[": "(", ")": "]", "]": ")"}
    forms = (f"{left}{lo}, {hi}{right}", f"{left}{lo},{hi}{right}", rf"\left{left}{lo}, {hi}\right{right}")
    wrong = (f"{flip[left]}{lo}, {hi}{flip[right]}", f"{left}{lo}, {hi + 1}{right}",
             f"{left}{lo - 2}, {hi}{right}")
    return MathAnswer("interval", forms[0], forms, wrong)


def _set(rng: random.Random) -> MathAnswer:
    items = sorted(rng.sample(range(-9, 13), rng.choice((2, 3))))
    text = ", ".join(map(str, items))
    forms = (rf"\{{{text}\}}", rf"\{{{', '.join(map(str, reversed(items)))}\}}", rf"\left\{{{text}\right\}}")
    changed = items[:-1] + [items[-1] + rng.randint(1, 4)]
    wrong = (rf"\{{{', '.join(map(str, changed))}\}}", rf"\{{{', '.join(map(str, items[:-1]))}\}}")
    return MathAnswer("set", forms[0], forms, wrong)


def _tuple(rng: random.Random) -> MathAnswer:
    a, b = rng.sample([v for v in range(-9, 10) if v], 2)
    forms = (f"({a}, {b})", rf"\left( {a}, {b} \right)", f"({a},{b})")
    wrong = (f"({b}, {a})", f"({a}, {-b})", f"({a + 1}, {b})")
    return MathAnswer("tuple", forms[0], forms, wrong)


def _degrees(rng: random.Random) -> MathAnswer:
    a = rng.choice([v for v in range(15, 170, 5) if v != 90])
    forms = (rf"{a}^\circ", rf"{a}^{{\circ}}", rf"{a} ^\circ")
    wrong = (rf"{180 - a}^\circ", rf"{a + 15}^\circ", rf"{a // 2}^\circ")
    return MathAnswer("degrees", forms[0], forms, wrong)


def _percentage(rng: random.Random) -> MathAnswer:
    a = rng.randint(1, 95)
    forms = (rf"{a}\%", rf"{a}\,\%", rf"{a} \%")
    wrong = (rf"{a + 5}\%", rf"{100 - a + 1}\%", rf"{2 * a}\%")
    return MathAnswer("percentage", forms[0], forms, wrong)


_TEXT_ANSWERS = ("north", "south", "east", "west", "Tuesday", "Friday", "even", "odd", "never", "always")


def _text(rng: random.Random) -> MathAnswer:
    word, *others = rng.sample(_TEXT_ANSWERS, 3)
    # Only the exact spelling counts as equal: case and spacing inside \text are not safe to vary.
    ref = rf"\text{{{word}}}"
    return MathAnswer("text", ref, (ref,), tuple(rf"\text{{{w}}}" for w in others))


_KINDS: tuple[tuple[Callable[[random.Random], MathAnswer], float], ...] = (
    (_integer, 0.34), (_fraction, 0.13), (_decimal, 0.08), (_sqrt, 0.08), (_pi, 0.07),
    (_interval, 0.06), (_set, 0.06), (_tuple, 0.06), (_degrees, 0.05), (_percentage, 0.04), (_text, 0.03),
)


_MAKERS = [make for make, _ in _KINDS]
_CUMULATIVE = list(itertools.accumulate(w for _, w in _KINDS))


def draw_answer(rng: random.Random) -> MathAnswer:
    return rng.choices(_MAKERS, cum_weights=_CUMULATIVE)[0](rng)


def candidate_form(rng: random.Random, answer: MathAnswer, correct: bool) -> str:
    """The answer a candidate boxes: about half the correct ones use another equivalent spelling."""
    if not correct:
        return rng.choice(answer.wrong_forms)
    if len(answer.correct_forms) > 1 and rng.random() < 0.5:
        return rng.choice(answer.correct_forms[1:])
    return answer.reference
