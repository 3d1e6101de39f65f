"""Campaign budget optimisation (seed 004): fit each channel's response of conversions to spend, then split a budget
where the next unit of spend earns most.

A channel's daily conversions follow a Hill curve of its daily spend, ``top * s^shape / (s^shape + half^shape)``:
``top`` the most it can bring, ``half`` the spend that brings half of that, ``shape`` (0.5-3) how fast it rises,
so returns diminish past ``half`` (the form used by marketing-mix models, e.g. Jin et al. 2017, Google). Curves are
fitted by least squares on each channel's days. The allocation hands the budget out in small slices, each time to the
channel and the number of slices with the best gain per slice (one slice at a time is optimal for concave curves; the
jumps carry an S-shaped curve past its slow start, which slice-by-slice greed never begins); its regret is what it
loses against the allocation the true curves would give, judged under the true curves.

Plain functions and frozen dataclasses over pandas and numpy: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from ownlens.ml.errors import InvalidInput

MIN_DAYS = 8  # days with spend a curve needs
STRETCH = 2.0  # how far beyond the most a channel was ever given its curve is trusted


@dataclass(frozen=True)
class ResponseCurve:
    """Daily conversions of a channel as a function of its daily spend."""

    channel: str
    top: float
    half: float
    shape: float
    ceiling: float = np.inf  # the most it was ever given in a day

    def __call__(self, spend) -> np.ndarray:
        s = np.maximum(np.asarray(spend, dtype=float), 0.0)
        return self.top * s ** self.shape / (s ** self.shape + self.half ** self.shape)


def _hill(s, top, half, shape):
    return top * s ** shape / (s ** shape + half ** shape)


def fit_curves(days: pd.DataFrame) -> dict[str, ResponseCurve]:
    """A response curve per channel from daily rows ``channel``, ``spend``, ``conversions``."""
    missing = [c for c in ("channel", "spend", "conversions") if c not in days.columns]
    if missing:
        raise InvalidInput(f"campaign days need columns channel, spend and conversions; missing {missing}")
    if (days[["spend", "conversions"]] < 0).any().any() or days[["spend", "conversions"]].isna().any().any():
        raise InvalidInput("spend and conversions must be non-negative numbers")
    curves = {}
    for channel, rows in days.groupby("channel", sort=True):
        spent = rows[rows["spend"] > 0]
        if len(spent) < MIN_DAYS or spent["spend"].nunique() < 3:
            raise InvalidInput(f"channel {channel!r} has {len(spent)} days with spend ({spent['spend'].nunique()} distinct "
                               f"amounts): a response curve needs at least {MIN_DAYS} days at 3 or more spend levels")
        s, y = rows["spend"].to_numpy(float), rows["conversions"].to_numpy(float)
        # a half-saturation beyond twice the most ever spent cannot be told from a straight line: capped there
        start = (max(y.max(), 1e-6) * 1.5, float(np.median(s[s > 0])), 1.0)
        bounds = ([0.0, 1e-9, 0.5], [np.inf, 2.0 * float(s.max()), 3.0])
        (top, half, shape), _ = curve_fit(_hill, s, y, p0=start, bounds=bounds, maxfev=20_000)
        curves[str(channel)] = ResponseCurve(str(channel), float(top), float(half), float(shape), float(s.max()))
    return curves


def allocate(curves: dict[str, ResponseCurve], budget: float, steps: int = 2_000, floor: dict | None = None,
             stretch: float = STRETCH) -> pd.Series:
    """Daily spend per channel summing to ``budget``, handed out in ``steps`` equal slices (see the module docstring;
    ``floor``: a minimum per channel, spent first), no channel above ``stretch`` times its ``ceiling`` (the most it
    was ever given: a Hill curve fitted over a range is trusted about as far again, not further) until every channel
    is there; ``attrs["extrapolated"]``
    says whether the budget needed that. A zero budget spends nothing."""
    if not curves:
        raise InvalidInput("no response curves: fit them on campaign days first")
    if not np.isfinite(budget) or budget < 0:
        raise InvalidInput(f"the budget must be a non-negative number (got {budget})")
    names = sorted(curves)
    funcs = [curves[c] for c in names]
    spend = np.array([float((floor or {}).get(c, 0.0)) for c in names])
    if spend.sum() > budget:
        raise InvalidInput(f"the channels' minimum spend ({spend.sum():,.2f}) exceeds the budget ({budget:,.2f})")
    ceiling = np.array([f.ceiling for f in funcs]) * stretch
    step = (budget - spend.sum()) / steps
    left, extrapolated = (steps if step > 0 else 0), False
    while left > 0:
        # the jump of 1, 2, 4 ... slices with the best gain per slice: one slice at a time for concave curves, and
        # past the slow start of an S-shaped one, which a slice at a time would never begin
        best, channel, jump = -np.inf, None, 0
        for i, f in enumerate(funcs):
            now = float(f(spend[i]))
            for k in sorted({*(2 ** np.arange(int(np.log2(left)) + 1)), left}):
                if not extrapolated and spend[i] + k * step > ceiling[i] + 1e-9:
                    break
                gain = (float(f(spend[i] + k * step)) - now) / k
                if gain > best:
                    best, channel, jump = gain, i, int(k)
        if channel is None:  # every channel at its ceiling: the rest goes where the curves, extrapolated, say
            extrapolated = True
            continue
        spend[channel] += jump * step
        left -= jump
    out = pd.Series(spend, index=names, name="spend")
    out.attrs["extrapolated"] = extrapolated
    return out


def expected_conversions(curves: dict[str, ResponseCurve], allocation: pd.Series) -> float:
    """Daily conversions the curves expect from ``allocation`` (channels without a curve bring none)."""
    return float(sum(curves[c](s) for c, s in allocation.items() if c in curves))


def regret(true_curves: dict[str, ResponseCurve], allocation: pd.Series, steps: int = 2_000) -> dict:
    """Judged under the true curves: the conversions of ``allocation``, of the best allocation of the same budget,
    and the share lost."""
    best = allocate(true_curves, float(allocation.sum()), steps)
    got, top = expected_conversions(true_curves, allocation), expected_conversions(true_curves, best)
    return {"conversions": got, "best_conversions": top, "regret": top - got, "regret_share": (top - got) / top if top else 0.0}
