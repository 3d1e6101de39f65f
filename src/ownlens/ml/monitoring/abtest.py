"""A/B tests between two versions of a model: deterministic assignment, outcomes, significance.

Each user is assigned to variant A or B by a hash of (test id, user id), the same in Python (serving)
and in SQL (analysis), so a user keeps their variant for the life of the test. A user's outcome on a
labelled feature date is whether the variant's prediction was right (probability >= 0.5 matched the
label); the analysis compares the two rates with a two-proportion z-test and the Bayesian probability
that each variant is best (Beta posteriors), and reports each arm's ROC AUC and Brier score.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get_spec
from ownlens.ml.models import metrics as M

STATUSES = ("running", "concluded")
COLUMNS = ("test_id, test_name, model_name, variant_a_version, variant_b_version, traffic_split, status, primary_metric, "
           "start_date, end_date, results, winner, created_at, updated_at")


def variant(test_id: str, user_id: str, split: float) -> str:
    """'B' for a ``split`` share of users, else 'A'; stable for a (test, user) pair."""
    digest = hashlib.sha256(f"{test_id}:{user_id}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "little") / 2**64 < split else "A"


# the same rule in SQL, for whole populations
VARIANT_SQL = ("if(reinterpretAsUInt64(substring(SHA256(concat({test:String}, ':', toString(user_id))), 1, 8)) / pow(2, 64) "
               "< {split:Float64}, 'B', 'A')")


@dataclass(frozen=True)
class ABTest:
    test_id: str
    name: str
    model: str
    version_a: str
    version_b: str
    split: float
    status: str
    start: date
    end: date | None
    results: dict
    winner: str


def _row_to_test(r) -> ABTest:
    return ABTest(str(r[0]), r[1], r[2], r[3], r[4], float(r[5]), r[6], r[8], r[9], json.loads(r[10] or "{}"), r[11])


def get(client: Client, name: str) -> ABTest:
    rows = client.query(f"SELECT {COLUMNS} FROM ml_model_ab_tests FINAL WHERE test_name = {{n:String}} ORDER BY created_at DESC LIMIT 1",
                        parameters={"n": name}).result_rows
    if not rows:
        raise NotFound(f"no A/B test named {name!r}: create it with `ownlens-ml abtest create`")
    return _row_to_test(rows[0])


def running(client: Client, model: str) -> ABTest | None:
    """The A/B test of ``model`` now running (the newest, if several), or None."""
    rows = client.query(f"SELECT {COLUMNS} FROM ml_model_ab_tests FINAL WHERE model_name = {{m:String}} AND status = 'running' "
                        "ORDER BY created_at DESC LIMIT 1", parameters={"m": model}).result_rows
    return _row_to_test(rows[0]) if rows else None


def _write(client: Client, t: ABTest, created_at: datetime | None = None) -> None:
    now = datetime.now(timezone.utc)
    client.insert("ml_model_ab_tests", [[uuid.UUID(t.test_id), t.name, t.model, t.version_a, t.version_b, t.split, t.status,
                                         "accuracy", t.start, t.end, json.dumps(t.results, default=str), t.winner,
                                         created_at or now, now]], column_names=COLUMNS.split(", "))


def create(client: Client, name: str, model: str, version_a: str, version_b: str, split: float = 0.5,
           start: date | None = None) -> ABTest:
    """Register a running test of ``version_b`` against ``version_a`` for ``split`` of the users."""
    from ownlens.ml.registry import store

    from ownlens.ml.models import TASK_MODELS

    if model in TASK_MODELS and model not in AB_TASK_MODELS:
        raise InvalidInput(f"A/B tests compare versions of churn, conversion or recommendation; {model} has no outcome "
                           "per user to compare")
    if model not in AB_TASK_MODELS:
        get_spec(model)
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
    test = ABTest(str(uuid.uuid4()), name, model, version_a, version_b, split, "running", start, None, {}, "")
    _write(client, test)
    return test


def _two_proportions(k_a: int, n_a: int, k_b: int, n_b: int) -> dict:
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


AB_TASK_MODELS = ("recommendation",)  # task models an A/B test can compare (by what users did with their outputs)

# per arm, over the recommendations its version stored: (user, batch) pairs, those with a recommended article read
# within 7 days, recommendations, and recommendations read (rows of other versions, e.g. batches before the test, are left out)
RECOMMENDATION_OUTCOMES = f"""
SELECT arm, uniqExact(user_id, d), uniqExactIf((user_id, d), read), count(), countIf(read)
FROM (
    SELECT {VARIANT_SQL.replace('toString(user_id)', 'toString(r.user_id)')} AS arm, r.user_id AS user_id,
           r.recommendation_date AS d, r.model_version AS model_version, v.n > 0 AS read
    FROM customer_recommendations AS r
    LEFT JOIN (
        SELECT e.user_id AS user_id, e.article_id AS article_id, w.d AS d, count() AS n
        FROM editorial_content_events AS e
        CROSS JOIN (SELECT arrayJoin({{dates:Array(Date)}}) AS d) AS w
        WHERE e.event_type = 'article_view' AND e.event_timestamp >= w.d AND e.event_timestamp < w.d + 7
          AND e.event_timestamp >= arrayMin({{dates:Array(Date)}}) AND e.event_timestamp < arrayMax({{dates:Array(Date)}}) + 7
        GROUP BY user_id, article_id, d
    ) AS v ON v.user_id = r.user_id AND v.article_id = r.article_id AND v.d = r.recommendation_date
    WHERE r.recommendation_date IN {{dates:Array(Date)}}
)
WHERE model_version = if(arm = 'B', {{version_b:String}}, {{version_a:String}})
GROUP BY arm ORDER BY arm
SETTINGS join_use_nulls = 0
"""


def _analyse_recommendations(client: Client, test: ABTest, dates: list[date] | None) -> dict:
    """Each arm's users who read at least one article recommended to them within 7 days, per batch date."""
    if not dates:  # the batches made under the test (holding both arms) whose 7 days of reading have passed
        rows = client.query("SELECT recommendation_date FROM customer_recommendations WHERE recommendation_date >= {s:Date} "
                            "AND recommendation_date + 7 <= (SELECT max(toDate(event_timestamp)) FROM editorial_content_events) "
                            "GROUP BY recommendation_date HAVING countIf(model_version = {a:String}) > 0 AND "
                            "countIf(model_version = {b:String}) > 0 ORDER BY 1",
                            parameters={"s": test.start, "a": test.version_a, "b": test.version_b}).result_rows
        dates = [r[0] for r in rows if test.end is None or r[0] <= test.end]
    if not dates:
        raise NotFound(f"no recommendation batch made under the test since {test.start} with 7 days of reading after it yet: "
                       "run `ownlens-ml predict recommendation` while the test runs, and wait a week")
    found = {arm: rest for arm, *rest in client.query(RECOMMENDATION_OUTCOMES, parameters={
        "test": test.test_id, "split": test.split, "dates": dates, "version_a": test.version_a,
        "version_b": test.version_b}).result_rows}
    out = {"dates": [str(d) for d in dates], "outcome": "users (per batch) who read a recommended article within 7 days", "arms": {}}
    counts = {}
    for arm, version in (("A", test.version_a), ("B", test.version_b)):
        if arm not in found:
            raise NotFound(f"variant {arm} ({version}) stored no recommendations on {[str(d) for d in dates]}: run "
                           "`ownlens-ml predict recommendation` while the test runs (it stores each user's arm)")
        users, users_hit, recommended, hits = found[arm]
        counts[arm] = (int(users_hit), int(users))
        out["arms"][arm] = {"version": version, "users": int(users),
                            "hit_rate": users_hit / users, "precision_at_k": hits / recommended if recommended else None}
    out["test"] = _two_proportions(*counts["A"], *counts["B"])
    return out


def analyse(client: Client, name: str, dates: list[date] | None = None) -> dict:
    """Outcomes of each arm on the labelled feature dates since the test started, and the significance."""
    from ownlens.ml.models.data import labelled_dates, training_frame
    from ownlens.ml.registry import store

    test = get(client, name)
    if test.model in AB_TASK_MODELS:
        return _analyse_recommendations(client, test, dates)
    spec = get_spec(test.model)
    if spec.task != "binary" or spec.source is not None:
        raise InvalidInput(f"A/B analysis covers the user classifiers (churn, conversion); {test.model} is not one")
    dates = dates or [d for d in labelled_dates(client) if d >= test.start and (test.end is None or d <= test.end)]
    if not dates:
        raise NotFound(f"no labelled feature dates since {test.start} yet: outcomes need 30 days after a feature date")
    frame = training_frame(client, spec, dates)
    arms = np.array([variant(test.test_id, u, test.split) for u in frame["user_id"]])
    out = {"dates": [str(d) for d in dates], "arms": {}}
    counts = {}
    for arm, version in (("A", test.version_a), ("B", test.version_b)):
        rows = frame[arms == arm]
        if rows.empty:
            raise NotFound(f"variant {arm} has no users on {dates}: the split may be too extreme for this population")
        p = store.load(client, test.model, version).predict_values(rows)
        correct = ((p >= 0.5).astype(int) == rows["label"].to_numpy()).astype(int)
        m = M.classification_metrics(rows["label"], p)
        counts[arm] = (int(correct.sum()), len(rows))
        out["arms"][arm] = {"version": version, "users": len(rows), "accuracy": correct.mean(), "roc_auc": m["roc_auc"],
                            "brier": m["brier"]}
    out["test"] = _two_proportions(*counts["A"], *counts["B"])
    return out


def status(client: Client, name: str) -> tuple[ABTest, dict]:
    """Analyse a test and record the results on it (the test keeps running)."""
    test = get(client, name)
    results = analyse(client, name)
    updated = ABTest(**{**test.__dict__, "results": results})
    _write(client, updated)
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
    _write(client, final)
    return final
