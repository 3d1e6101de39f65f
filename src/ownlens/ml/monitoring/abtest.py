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


MIN_USERS_PER_ARM = 100  # and 10 outcomes of each kind per arm: below that the normal approximation misleads
POWER = 0.8


def two_proportions(k_a: int, n_a: int, k_b: int, n_b: int, alpha: float = 0.05) -> dict:
    """The two-proportion z-test of B's rate against A's (users independent, each counted once), the Bayesian
    probability that each is best, and the smallest difference the test could detect (at ``alpha`` with 80 % power)."""
    from scipy.stats import norm

    p_a, p_b = k_a / n_a, k_b / n_b
    pooled = (k_a + k_b) / (n_a + n_b)
    se = math.sqrt(max(pooled * (1 - pooled) * (1 / n_a + 1 / n_b), 1e-18))
    z = (p_b - p_a) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))  # two-sided
    mde = (norm.ppf(1 - alpha / 2) + norm.ppf(POWER)) * se
    rng = np.random.default_rng(0)  # Beta(1 + successes, 1 + failures) posteriors; fixed seed: same answer every time
    draws_a = rng.beta(1 + k_a, 1 + n_a - k_a, 200_000)
    draws_b = rng.beta(1 + k_b, 1 + n_b - k_b, 200_000)
    prob_b = float((draws_b > draws_a).mean())
    short = [f"{arm} has {n:,} users" if n < MIN_USERS_PER_ARM else f"{arm} has only {min(k, n - k)} users of one outcome"
             for arm, k, n in (("A", k_a, n_a), ("B", k_b, n_b)) if n < MIN_USERS_PER_ARM or min(k, n - k) < 10]
    enough = not short
    if not enough:
        verdict = f"not enough data yet: {'; '.join(short)} (at least {MIN_USERS_PER_ARM} and 10 of each outcome per arm)"
    elif p_value < alpha:
        verdict = f"{'B' if p_b > p_a else 'A'} is better: {p_b - p_a:+.4f} (p {p_value:.3g} < {alpha})"
    else:
        verdict = (f"no significant difference (p {p_value:.3g}); with these users the test detects a difference of "
                   f"{mde:.4f} or more 80 % of the time")
    return {"rate_a": p_a, "rate_b": p_b, "lift": p_b - p_a, "z": z, "p_value": p_value, "alpha": alpha,
            "minimum_detectable_effect": mde, "prob_a_best": 1 - prob_b, "prob_b_best": prob_b,
            "enough_data": enough, "verdict": verdict}


def analyse(client: Client, name: str, dates: list[date] | None = None, alpha: float = 0.05) -> dict:
    """Each arm's outcomes (the model's own, see ``model.ab_outcomes``: users counted once, on dates neither version
    learnt from) and the significance of the difference; ``test.enough_data`` is false, and ``test.verdict``
    says why, until there are enough."""
    test = get(client, name)
    outcomes = get_model(test.model).ab_outcomes(client, test, dates)
    counts = outcomes.pop("counts")
    reason = outcomes.pop("reason", None)
    if reason is not None or set(counts) != {"A", "B"}:
        outcomes["test"] = {"enough_data": False, "verdict": f"not enough data yet: {reason}", "p_value": None,
                            "minimum_detectable_effect": None, "alpha": alpha}
    else:
        outcomes["test"] = two_proportions(*counts["A"], *counts["B"], alpha=alpha)
    return outcomes


def status(client: Client, name: str) -> tuple[ABTest, dict]:
    """Analyse a test and record the results on it (the test keeps running)."""
    test = get(client, name)
    results = analyse(client, name)
    updated = ABTest(**{**test.__dict__, "results": results})
    write(client, updated)
    return updated, results


# whether a table a readout reads (labels, features, events, recommendations, the registry) was written after the
# test's readout was last stored (a part's time has whole seconds: counted as the end of its second)
READOUT_OUTDATED = """
SELECT (SELECT max(modification_time) + 1 FROM system.parts
        WHERE database = currentDatabase() AND active AND (endsWith(table, '_labels') OR endsWith(table, '_features')
              OR table IN ('customer_events', 'customer_recommendations', 'ml_model_registry')))
       > (SELECT max(updated_at) FROM ml_model_ab_tests FINAL WHERE test_name = {n:String})
"""
RUNNING_TESTS = "SELECT DISTINCT test_name FROM ml_model_ab_tests FINAL WHERE status = 'running' ORDER BY test_name"


def readout(client: Client, name: str, refresh: bool = False) -> tuple[ABTest, dict, bool]:
    """A test's readout, current with the data: a running test's stored one while nothing it reads has changed
    since it was computed, else computed (seconds at 1M users: every compared user scored by both versions) and
    stored now; a concluded test's final one. Returns the test, the readout and whether it was computed now."""
    test = get(client, name)
    if test.status != "running":
        return test, test.results, False
    if not refresh and test.results.get("test") and not client.command(READOUT_OUTDATED, parameters={"n": name}):
        return test, test.results, False
    updated, results = status(client, name)
    return updated, results, True


def refresh_running(client: Client) -> list[str]:
    """Bring every running test's stored readout up to date (the daily job and serve's schedule call it, so the
    console shows a current readout at once); returns the tests recomputed."""
    done = []
    for (name,) in client.query(RUNNING_TESTS).result_rows:
        if readout(client, name)[2]:
            done.append(name)
    return done


def conclude(client: Client, name: str, alpha: float = 0.05) -> ABTest:
    """Final analysis: the winner is the better arm when there is enough data and p < ``alpha``, else 'none'."""
    test = get(client, name)
    if test.status == "concluded":
        raise InvalidInput(f"A/B test {name!r} is already concluded (winner: {test.winner or 'none'})")
    results = analyse(client, name, alpha=alpha)
    t = results["test"]
    winner = ("B" if t["lift"] > 0 else "A") if t["enough_data"] and t["p_value"] < alpha else "none"
    final = ABTest(**{**test.__dict__, "status": "concluded", "end": datetime.now(timezone.utc).date(),
                      "results": results, "winner": winner})
    write(client, final)
    return final
