"""Campaign budget optimisation on channels whose true response curves are known: the fitted curves find the true
ones, the optimiser's split beats an equal split under the true curves and loses little against the best split;
bad input gets one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.marketing import budget as B

TRUE = {
    "search": B.ResponseCurve("search", top=120, half=800, shape=1.0),  # strong, saturates late
    "social": B.ResponseCurve("social", top=60, half=300, shape=1.6),  # S-shaped
    "display": B.ResponseCurve("display", top=25, half=1500, shape=1.0),  # weak
    "email": B.ResponseCurve("email", top=40, half=100, shape=0.8),  # cheap, saturates early
}


def _days(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for name, curve in TRUE.items():
        spend = rng.uniform(0.1, 3.0, n) * curve.half
        rows.append(pd.DataFrame({"channel": name, "spend": spend, "conversions": rng.poisson(curve(spend))}))
    return pd.concat(rows, ignore_index=True)


def test_the_fitted_curves_find_the_true_responses():
    curves = B.fit_curves(_days())
    for name, truth in TRUE.items():  # over the spend the channel was given
        grid = np.linspace(0, curves[name].ceiling, 31)
        assert np.abs(curves[name](grid) - truth(grid)).max() < 0.1 * truth.top, name


def test_the_optimised_split_beats_an_equal_split_under_the_true_curves():
    curves = B.fit_curves(_days())
    budget = 4000.0
    split = B.allocate(curves, budget)
    assert split.sum() == pytest.approx(budget) and (split >= 0).all()
    equal = pd.Series(budget / len(TRUE), index=sorted(TRUE))
    ours, even = B.regret(TRUE, split), B.regret(TRUE, equal)
    assert ours["conversions"] > even["conversions"] * 1.05
    assert ours["regret_share"] < 0.02  # fitted from noisy days, within 2 % of what the true curves allow
    assert split["search"] > split["display"]  # the weak channel gets least
    assert B.expected_conversions(curves, split) == pytest.approx(ours["conversions"], rel=0.1)


def test_zero_budget_spends_nothing_and_bad_input_gets_one_clear_error():
    curves = B.fit_curves(_days())
    nothing = B.allocate(curves, 0.0)
    assert nothing.sum() == 0 and B.expected_conversions(curves, nothing) == 0
    with pytest.raises(InvalidInput, match="non-negative"):
        B.allocate(curves, -5)
    with pytest.raises(InvalidInput, match="exceeds the budget"):
        B.allocate(curves, 100, floor={"search": 500})
    flat = pd.DataFrame({"channel": "tv", "spend": [0.0] * 20, "conversions": [1] * 20})
    with pytest.raises(InvalidInput, match="'tv' has 0 days with spend"):
        B.fit_curves(flat)
    with pytest.raises(InvalidInput, match="missing"):
        B.fit_curves(flat.drop(columns="spend"))
