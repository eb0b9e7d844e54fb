"""Quota arithmetic of the stratified mix: pure Python over a handful of strata.

The mix asks for exact counts per stratum (kind x domain). Counts come from
weights by largest-remainder rounding, so they always sum to the total. When a
stratum has fewer rows than asked, the shortfall policy decides: ``fail``
names every short stratum at once (fixing one at a time would take as many
runs as there are short strata); ``redistribute`` hands the missing rows to
the other strata of the same kind in proportion to what they were asked, then
to the strata of other kinds. Upsampling, when enabled, lets a stratum repeat
its rows up to ``max_upsample_factor`` times before anything is redistributed:
whoever enables it wants the asked proportions kept.

Strata that hold rows but are not in the config get a plan row with
``asked = 0`` so the log and ``ops.mix_plan`` show what the mix left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

Stratum = tuple[str, str]  # (kind, domain)


class MixShortfallError(RuntimeError):
    """Strata cannot be filled under the configured policy; the message lists all of them."""


@dataclass(frozen=True)
class StratumPlan:
    kind: str
    domain: str
    weight: float  # the configured weight of the domain within its kind
    asked: int  # the quota from the config alone
    available: int  # distinct eligible rows
    taken: int  # rows in the mix (copies included)

    @property
    def upsampled(self) -> int:
        """Rows beyond the distinct ones: repeats of rows already in the mix."""
        return max(0, self.taken - self.available)

    @property
    def full_copies(self) -> int:
        """Every row of the stratum appears this many times ..."""
        return self.taken // self.available if self.available else 0

    @property
    def extra_rows(self) -> int:
        """... and the first this many rows (in hash order) once more."""
        return self.taken % self.available if self.available else 0


def largest_remainder(total: int, weights: Sequence[float | int | Fraction]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` that sum exactly to ``total``.

    Hamilton's method: floor every exact share, then give the leftover units to
    the largest remainders; ties go to the earlier weight, so the split is
    deterministic. Weights are read as exact fractions (``0.1`` is one tenth).
    """
    if total < 0:
        raise ValueError(f"cannot split a negative total {total}")
    exact = [Fraction(str(w)) if isinstance(w, float) else Fraction(w) for w in weights]
    if any(w < 0 for w in exact):
        raise ValueError("weights must not be negative")
    weight_sum = sum(exact, Fraction(0))
    if weight_sum == 0:
        if total:
            raise ValueError(f"cannot split {total} over weights that sum to 0")
        return [0] * len(exact)
    shares = [total * w / weight_sum for w in exact]
    counts = [math.floor(s) for s in shares]
    leftover = total - sum(counts)
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - counts[i]), i))
    for i in order[:leftover]:
        counts[i] += 1
    return counts


def plan_mix(
    asked: Mapping[Stratum, int],
    weights: Mapping[Stratum, float],
    available: Mapping[Stratum, int],
    shortfall: str,
    upsample: bool = False,
    max_upsample_factor: float = 1.0,
    allow_short_total: bool = False,
) -> list[StratumPlan]:
    """Quotas per stratum after the shortfall policy; raises ``MixShortfallError`` when it cannot."""
    factor = max_upsample_factor if upsample else 1.0
    capacity = {s: math.floor(available.get(s, 0) * factor) for s in asked}
    taken = {s: min(n, capacity[s]) for s, n in asked.items()}
    short = [s for s in asked if asked[s] > capacity[s]]
    if short and shortfall == "fail":
        raise MixShortfallError(_shortfall_message(short, asked, available, capacity, upsample, factor))
    if short:
        kinds = sorted({kind for kind, _ in asked})
        for kind in kinds:  # first within the kind ...
            in_kind = [s for s in asked if s[0] == kind]
            missing = sum(asked[s] - taken[s] for s in in_kind)
            _fill(taken, missing, in_kind, asked, capacity)
        missing = sum(asked.values()) - sum(taken.values())  # ... then across kinds
        _fill(taken, missing, list(asked), asked, capacity)
        still = sum(asked.values()) - sum(taken.values())
        if still and not allow_short_total:
            have = sum(capacity.values())
            raise MixShortfallError(
                f"the mix asks for {sum(asked.values()):,} rows but all configured strata together hold "
                f"{have:,} (after upsampling: {'on' if upsample else 'off'}); lower mix.total, enable "
                f"upsampling or set mix.allow_short_total.\n"
                + _shortfall_message(short, asked, available, capacity, upsample, factor)
            )
    plans = [
        StratumPlan(
            kind,
            domain,
            float(weights.get((kind, domain), 0.0)),
            asked[(kind, domain)],
            available.get((kind, domain), 0),
            taken[(kind, domain)],
        )
        for kind, domain in asked
    ]
    unplanned = sorted(s for s in available if s not in asked)
    plans += [StratumPlan(kind, domain, 0.0, 0, available[(kind, domain)], 0) for kind, domain in unplanned]
    return plans


def _fill(
    taken: dict[Stratum, int],
    missing: int,
    strata: list[Stratum],
    asked: Mapping[Stratum, int],
    capacity: Mapping[Stratum, int],
) -> None:
    """Water-fill ``missing`` rows into ``strata`` with spare room, in proportion to what each was asked."""
    while missing > 0:
        open_strata = [s for s in strata if capacity[s] > taken[s] and asked[s] > 0]
        if not open_strata:
            # Strata asked for nothing take rows only when no asked stratum has room left.
            open_strata = [s for s in strata if capacity[s] > taken[s]]
            weights: list[int] = [1] * len(open_strata)
        else:
            weights = [asked[s] for s in open_strata]
        if not open_strata:
            return
        shares = largest_remainder(missing, weights)
        for stratum, share in zip(open_strata, shares, strict=True):
            add = min(share, capacity[stratum] - taken[stratum])
            taken[stratum] += add
            missing -= add


def _shortfall_message(
    short: list[Stratum],
    asked: Mapping[Stratum, int],
    available: Mapping[Stratum, int],
    capacity: Mapping[Stratum, int],
    upsample: bool,
    factor: float,
) -> str:
    lines = [f"{len(short)} short strata:"]
    for kind, domain in short:
        extra = f", up to {capacity[(kind, domain)]:,} with upsampling x{factor:g}" if upsample else ""
        have = available.get((kind, domain), 0)
        lines.append(f"  {kind}/{domain}: asked {asked[(kind, domain)]:,}, available {have:,}{extra}")
    return "\n".join(lines)


def format_plan(plans: list[StratumPlan]) -> str:
    """The plan as an aligned text table for the log."""
    header = ("kind", "domain", "asked", "available", "taken", "upsampled")
    rows = [header] + [
        (p.kind, p.domain, f"{p.asked:,}", f"{p.available:,}", f"{p.taken:,}", f"{p.upsampled:,}")
        for p in plans
    ]
    rows.append(
        (
            "total",
            "",
            f"{sum(p.asked for p in plans):,}",
            f"{sum(p.available for p in plans):,}",
            f"{sum(p.taken for p in plans):,}",
            f"{sum(p.upsampled for p in plans):,}",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )
