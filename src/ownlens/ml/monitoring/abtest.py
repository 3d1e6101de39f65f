"""A/B tests between two versions of a model: creating them, and their analysis (outcomes, significance, winner).

Users are split by the registry (``registry/abtests.py``: a stable hash of test and user, the same in Python and
SQL); what counts as an outcome is the model's own (``model.ab_outcomes``: for the user classifiers, whether each
arm's prediction was right; for recommendations, whether a user read an article recommended to them). The
analysis compares the two arms' rates with a two-proportion z-test and the Bayesian probability that each is best
(Beta posteriors). A model without outcomes per user (segments, ad placement) cannot be A/B tested.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get as get_model
from ownlens.ml.registry import store
from ownlens.ml.registry.abtests import VARIANT_SQL, ABTest, get, new, running, variant, write

__all__ = ["create", "analyse", "status", "conclude", "get", "running", "variant", "VARIANT_SQL", "ABTest"]


def testable(model) -> bool:
    """Whether ``model`` has an outcome per user to compare two versions by."""
    return model.ab_outcomes is not None


def create(client: Client, name: str, model: str, version_a: str, version_b: str, split: float = 0.5,
           start: date | None = None) -> ABTest:
    """Register a running test of ``version_b`` against ``version_a`` for ``split`` of the users."""
    definition = get_model(model)
    if not testable(definition):
        from ownlens.ml.models import every

        names = ", ".join(m.name for m in every() if testable(m))
        raise InvalidInput(f"A/B tests compare versions of {names}; {model} has no outcome per user to compare")
    if not 0 < split < 1:
        raise InvalidInput(f"--split must be between 0 and 1 (got {split})")
    if version_a == version_b:
        raise InvalidInput("variants A and B must be different versions")
    for v in (version_a, version_b):
        store.get(client, model, v)  # NotFound names the missing version
    try:
        existing = get(client, name)
        if existing.status == "running":
            raise InvalidInput(f"A/B test {name!r} is already running: conclude it first or pick another name")
    except NotFound:
        pass
    if start is None:  # data time, not wall time: the test starts with the newest features in the warehouse
        from ownlens.ml.data.loaders import latest_feature_date

        start = latest_feature_date(client)
    test = new(name, model, version_a, version_b, split, start)
    write(client, test)
    return test


def two_proportions(k_a: int, n_a: int, k_b: int, n_b: int) -> dict:
    p_a, p_b = k_a / n_a, k_b / n_b
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(max(pooled * (1 - pooled) * (1 / n_a + 1 / n_b), 1e-18))
    z = (p_b - p_a) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))  # two-sided
    rng = np.random.default_rng(0)  # Beta(1 + successes, 1 + failures) posteriors; fixed seed: same answer every time
    draws_a = rng.beta(1 + k_a, 1 + n_a - k_a, 200_000)
    draws_b = rng.beta(1 + k_b, 1 + n_b - k_b, 200_000)
    prob_b = float((draws_b > draws_a).mean())
    return {"rate_a": p_a, "rate_b": p_b, "lift": p_b - p_a, "z": z, "p_value": p_value,
            "prob_a_best": 1 - prob_b, "prob_b_best": prob_b}


def analyse(client: Client, name: str, dates: list[date] | None = None) -> dict:
    """Each arm's outcomes (the model's own, see ``model.ab_outcomes``) and the significance of the difference."""
    test = get(client, name)
    outcomes = get_model(test.model).ab_outcomes(client, test, dates)
    counts = outcomes.pop("counts")
    outcomes["test"] = two_proportions(*counts["A"], *counts["B"])
    return outcomes


def status(client: Client, name: str) -> tuple[ABTest, dict]:
    """Analyse a test and record the results on it (the test keeps running)."""
    test = get(client, name)
    results = analyse(client, name)
    updated = ABTest(**{**test.__dict__, "results": results})
    write(client, updated)
    return updated, results


def conclude(client: Client, name: str, alpha: float = 0.05) -> ABTest:
    """Final analysis: the winner is the better arm when p < ``alpha``, else 'none'."""
    test = get(client, name)
    if test.status == "concluded":
        raise InvalidInput(f"A/B test {name!r} is already concluded (winner: {test.winner or 'none'})")
    results = analyse(client, name)
    t = results["test"]
    winner = ("B" if t["lift"] > 0 else "A") if t["p_value"] < alpha else "none"
    final = ABTest(**{**test.__dict__, "status": "concluded", "end": datetime.now(timezone.utc).date(),
                      "results": results, "winner": winner})
    write(client, final)
    return final
