"""The attribution model's functions (seed 004: multi-touch attribution and campaign optimisation): which channels
earned the subscriptions of a period, and how to split the budget across them.

``train`` fits the additive touch model (``touch_model``) on the prospect-days before a held-out period and judges
it there: its incremental credit, and the credit rules (first/last touch, linear, Markov, Shapley) on the same
period's journeys, against the conversions each channel's touches truly caused (the simulator's truth), as
*attribution accuracy*: 1 - half the summed absolute difference between the shares of the paid conversions a
method gives each channel and the true shares (1: the same split; 0: disjoint). The budget recommendation (each
channel's touches-per-spend curve times its conversions per touch) is judged by its regret under the true response
curves, next to an equal split and the period's actual split.

``predict_batch`` credits the conversions of the ``PERIOD_DAYS`` before a date, channel by channel, and recommends
the split of the same daily budget, into ``marketing_channel_attribution``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, Field

from ownlens.ml.data.loaders import as_date, query_frame
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import oracle
from ownlens.ml.models.lookup import lookup_frame
from ownlens.ml.models.marketing import attribution, budget, incrementality, journeys
from ownlens.ml.models.marketing.touch_model import AdditiveTouchModel, feature_names
from ownlens.ml.models.protocol import Evaluation, TrainingResult
from ownlens.ml.models.spec import CategoryEncoder
from ownlens.ml.models.trained import TrainedModel
from ownlens.ml.warehouse import replace_partition

NAME = "attribution"
PERIOD_DAYS = 30  # a batch (and the test) credits the conversions of this many days
TRAIN_DAYS = 60  # prospect-days the touch model learns from, before the test period
RULES = ("last_touch", "first_touch", "linear", "markov", "shapley")
SPAN = "SELECT min(toDate(touched_at)), max(toDate(touched_at)) FROM marketing_touchpoints"
TOUCHES = """
SELECT toString(channel_code) AS channel, count() AS touches FROM marketing_touchpoints
WHERE touched_at >= toDateTime({start:Date}) AND touched_at < toDateTime({end:Date}) GROUP BY channel
"""


CAMPAIGNS = """
SELECT toString(c.campaign_id) AS campaign_id, c.campaign_name AS campaign_name, toString(c.channel_code) AS channel_code,
       ifNull(s.spend, 0) AS spend_eur, ifNull(t.touches, 0) AS touches, toUInt8(c.end_date >= {end:Date} - 1) AS live_at_end
FROM marketing_campaigns AS c
LEFT JOIN (SELECT campaign_id, sum(spend_eur) AS spend FROM marketing_spend_daily
           WHERE spend_date >= {start:Date} AND spend_date < {end:Date} GROUP BY campaign_id) AS s ON s.campaign_id = c.campaign_id
LEFT JOIN (SELECT campaign_id, count() AS touches FROM marketing_touchpoints
           WHERE touched_at >= toDateTime({start:Date}) AND touched_at < toDateTime({end:Date}) GROUP BY campaign_id) AS t
    ON t.campaign_id = c.campaign_id
WHERE c.start_date < {end:Date} AND c.end_date >= {start:Date}
ORDER BY channel_code, c.start_date, campaign_id
SETTINGS join_use_nulls = 1
"""


class ChannelAttribution(BaseModel):
    """One channel's share of a period's subscriptions and its budget recommendation."""

    channel_code: str = Field(description="A channel of marketing_channels, or `organic` (the conversions no touch caused).")
    period_start: date
    period_end: date = Field(description="The first day after the period (the prediction date).")
    spend_eur: float = Field(description="Spend in the period.")
    touches: int
    conversions: float = Field(description="Subscriptions its touches caused (incremental attribution).")
    conversions_by_rule: dict[str, float] = Field(description="The credit rules' shares of all conversions: last_touch, first_touch, linear, markov, shapley.")
    conversions_per_touch: float
    cost_per_conversion_eur: float | None = Field(description="Spend per incremental subscription (none without any).")
    recommended_spend_eur: float = Field(description="Daily spend the optimiser recommends for the period's daily budget.")
    expected_conversions: float = Field(description="Daily subscriptions expected at the recommended spend.")
    model_version: str


class AttributionOptions(BaseModel):
    days: int = Field(PERIOD_DAYS, ge=7, le=180, description="The period: the days before the date looked at.")
    budget_eur: float | None = Field(None, ge=0, le=1e9, description="Daily budget to split (default: the period's mean daily spend).")


def touch_span(client: Client) -> tuple[date, date]:
    """The first day with touchpoints and the first day after the last; NotFound when there are none."""
    first, last = client.query(SPAN).result_rows[0]
    if int(client.command("SELECT count() FROM marketing_touchpoints")) == 0:
        raise NotFound("marketing_touchpoints is empty: simulate (ownlens-ml simulate) or load touchpoints first")
    return first, last + timedelta(days=1)


def shares_accuracy(estimated: pd.Series, truth: pd.Series) -> float:
    """1 - total variation distance between two splits of the paid conversions (``organic`` left out)."""
    e, t = estimated.drop("organic", errors="ignore").clip(lower=0), truth.drop("organic", errors="ignore").clip(lower=0)
    if e.sum() <= 0 or t.sum() <= 0:
        return float("nan")
    index = e.index.union(t.index)
    return float(1 - 0.5 * (e.reindex(index, fill_value=0) / e.sum() - t.reindex(index, fill_value=0) / t.sum()).abs().sum())


def _rank_correlation(estimated: pd.Series, truth: pd.Series) -> float:
    t = truth.drop("organic", errors="ignore")
    e = estimated.reindex(t.index).fillna(0)
    return float(pd.Series(e).rank().corr(pd.Series(t).rank())) if len(t) > 2 else float("nan")


@dataclass
class AttributionTest:
    start: date
    end: date
    frame: pd.DataFrame = field(repr=False)
    journeys: pd.DataFrame = field(repr=False)
    split: dict = field(default_factory=dict)


@dataclass
class Scored:
    """A test set scored by a version: per channel the true, incremental and rule-based conversions; the fitted and
    true curves and the allocations. ``evaluate`` takes it as the test set again."""

    test: AttributionTest = field(repr=False)
    table: pd.DataFrame = field(repr=False)
    curves: dict = field(repr=False)
    true_curves: dict | None = field(repr=False)
    allocations: pd.DataFrame = field(repr=False)


def _periods(client: Client, test_date) -> tuple[date, date, date]:
    first, end = touch_span(client)
    test_start = as_date(test_date, "test_date") if test_date else end - timedelta(days=PERIOD_DAYS)
    if test_start <= first + timedelta(days=14) or test_start + timedelta(days=7) > end:
        raise InvalidInput(f"the test period must start at least 14 days after the first touchpoint ({first}) and leave a "
                           f"week before the last ({end - timedelta(days=1)}): pass a test date in between")
    return max(first, test_start - timedelta(days=TRAIN_DAYS)), test_start, min(end, test_start + timedelta(days=PERIOD_DAYS))


def test_set(client: Client, *, test_date=None, **_) -> AttributionTest:
    train_start, start, end = _periods(client, test_date)
    frame = incrementality.prospect_days(client, start, end)
    return AttributionTest(start, end, frame, journeys.user_journeys(client, start, end),
                           {"kind": "time", "train_dates": [str(train_start), str(start - timedelta(days=1))],
                            "test_date": str(start), "test_dates": [str(start), str(end - timedelta(days=1))],
                            "test_rows": int(frame["days"].sum()), "test_conversions": int(frame["conversions"].sum())})


def _channels(model: TrainedModel) -> list[str]:
    return [f.split(":", 1)[1] for f in model.features if f.startswith("touches:")]


def _aligned(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's touch vectors in the model's channel order (a channel the model never saw counts as no touch)."""
    channels, have = _channels(model), frame.attrs["channels"]
    if channels == have:
        return frame
    index = [have.index(c) if c in have else None for c in channels]
    pick = lambda v: [v[i] if i is not None else 0 for i in index]
    out = frame.assign(same=frame["same"].map(pick), prior=frame["prior"].map(pick))
    out.attrs["channels"] = channels
    return out


def channel_credit(client: Client, model: TrainedModel, frame: pd.DataFrame, paths: pd.DataFrame | None, start: date, end: date,
                   daily_budget: float | None = None) -> tuple[pd.DataFrame, dict, pd.Series]:
    """Per channel: spend, touches, incremental and rule-based conversions, conversions per touch, and the budget
    recommendation; with the fitted response curves and the recommended allocation."""
    frame = _aligned(model, frame)
    channels = frame.attrs["channels"]
    credit = incrementality.credit(model.estimator, frame, channels)
    rules = attribution.attribute(paths) if paths is not None and paths["conversions"].sum() > 0 else pd.DataFrame(columns=RULES)
    spend = journeys.spend_days(client, start, end)
    touches = dict(client.query(TOUCHES, parameters={"start": start, "end": end}).result_rows)
    curves = incrementality.response_curves(client, model.estimator, frame, start, end)
    days = (end - start).days
    total = float(spend.groupby("channel")["spend"].sum().reindex(list(curves)).fillna(0).sum()) / days
    daily = total if daily_budget is None else float(daily_budget)
    allocation = budget.allocate(curves, daily) if curves else pd.Series(dtype=float, name="spend")
    table = pd.DataFrame({"channel_code": ["organic", *channels]})
    table["spend_eur"] = table["channel_code"].map(spend.groupby("channel")["spend"].sum()).fillna(0.0)
    table["touches"] = table["channel_code"].map(touches).fillna(0).astype(np.int64)
    table["conversions"] = table["channel_code"].map(credit).fillna(0.0)
    for rule in RULES:
        table[f"conversions_{rule}"] = table["channel_code"].map(rules[rule] if rule in rules else {}).fillna(0.0)
    table["conversions_per_touch"] = table["channel_code"].map(dict(zip(channels, model.estimator.per_touch()))).fillna(0.0)
    table["cost_per_conversion_eur"] = np.where(table["conversions"] > 0.5, table["spend_eur"] / table["conversions"].clip(lower=1e-9), np.nan)
    table.loc[table["channel_code"] == "organic", "cost_per_conversion_eur"] = np.nan
    for name, column in (("top", "curve_top"), ("half", "curve_half_eur"), ("shape", "curve_shape")):
        table[column] = table["channel_code"].map({c: getattr(f, name) for c, f in curves.items()}).fillna(0.0)
    table["recommended_spend_eur"] = table["channel_code"].map(allocation).fillna(0.0)
    table["expected_conversions"] = table["channel_code"].map({c: float(f(allocation.get(c, 0.0))) for c, f in curves.items()}).fillna(0.0)
    table.attrs.update(start=start, end=end, daily_budget=daily, untouched_conversions=int(paths.attrs.get("untouched_conversions", 0)) if paths is not None else 0)
    return table, curves, allocation


def campaign_credit(client: Client, table: pd.DataFrame) -> pd.DataFrame:
    """Per campaign running in the period of a channel ``table`` (:func:`channel_credit`): its spend, touches, its
    share of the channel's incremental conversions (its share of the channel's touches: the touch model's effects are
    per channel, as the simulator's are), the cost per conversion, and its part of the channel's recommended daily
    spend and expected conversions: shared among the campaigns still live on the period's last day by their spend in
    the period (equally when none spent yet); none for a channel without a live campaign."""
    start, end = table.attrs["start"], table.attrs["end"]
    frame = query_frame(client, CAMPAIGNS, {"start": start, "end": end})
    frame["touches"] = frame["touches"].astype(np.int64)
    channel = table.set_index("channel_code")
    touches = frame.groupby("channel_code")["touches"].transform("sum")
    frame["conversions"] = np.where(touches > 0, frame["channel_code"].map(channel["conversions"]).fillna(0.0) * frame["touches"] / touches.clip(lower=1), 0.0)
    frame["cost_per_conversion_eur"] = np.where(frame["conversions"] > 0.5, frame["spend_eur"] / frame["conversions"].clip(lower=1e-9), np.nan)
    live = frame["live_at_end"].astype(bool)
    weight = np.where(live, frame["spend_eur"], 0.0)
    totals = pd.Series(weight).groupby(frame["channel_code"]).transform("sum").to_numpy()
    lives = live.groupby(frame["channel_code"]).transform("sum").to_numpy()
    share = np.where(totals > 0, weight / np.where(totals > 0, totals, 1), np.where(live, 1 / np.maximum(lives, 1), 0.0))
    for column in ("recommended_spend_eur", "expected_conversions"):
        frame[column] = frame["channel_code"].map(channel[column]).fillna(0.0).to_numpy() * share
    frame.attrs.update(start=start, end=end)
    return frame


def evaluate(client: Client, model: TrainedModel, test: AttributionTest | Scored) -> Evaluation:
    """The version's incremental credit and the credit rules against the conversions each channel truly caused in the
    test period, and its budget split's regret under the true response curves (with an equal and the actual split)."""
    test = test.test if isinstance(test, Scored) else test
    paths = journeys.paths(test.journeys)
    paths.attrs["untouched_conversions"] = test.journeys.attrs.get("untouched_conversions", 0)
    table, curves, allocation = channel_credit(client, model, test.frame, paths, test.start, test.end)
    truth = oracle.channel_conversions(client, test.start, test.end)
    true_curves = oracle.channel_curves(client, test.start, test.end)
    metrics = {"conversions": round(float(table["conversions"].sum()), 1), "paid_conversions": round(float(table.loc[table["channel_code"] != "organic", "conversions"].sum()), 1),
               "untouched_conversions": table.attrs["untouched_conversions"], "daily_budget_eur": round(table.attrs["daily_budget"], 2)}
    oracle_metrics = None
    allocations = pd.DataFrame({"recommended": allocation})
    if truth is not None:
        table["true_conversions"] = table["channel_code"].map(truth).fillna(0.0)
        credit = table.set_index("channel_code")
        metrics["attribution_accuracy"] = round(shares_accuracy(credit["conversions"], truth), 4)
        metrics["rank_correlation"] = round(_rank_correlation(credit["conversions"], truth), 4)
        for rule in RULES:
            metrics[f"{rule}_accuracy"] = round(shares_accuracy(credit[f"conversions_{rule}"], truth), 4)
        # the oracle: the same credit with the true conversions per touch (the best any estimate of them could do)
        effects = oracle.channel_effects(client)
        best = AdditiveTouchModel(groups=model.estimator.groups)
        best.n_features_in_, best.baseline_ = model.estimator.n_features_in_, model.estimator.baseline_
        best.effect_ = effects.reindex(_channels(model)).fillna(0.0).to_numpy(float)
        best.carryover_, best.converged_ = np.zeros(len(best.effect_)), True
        best_credit = incrementality.credit(best, _aligned(model, test.frame), _channels(model))
        oracle_metrics = {"attribution_accuracy": round(shares_accuracy(best_credit, truth), 4), "budget_regret_share": 0.0}
    if true_curves is not None and curves:
        daily = table.attrs["daily_budget"]
        names = sorted(curves)
        actual = table.set_index("channel_code")["spend_eur"].reindex(names).fillna(0) / (test.end - test.start).days
        allocations = pd.DataFrame({"recommended": allocation, "equal": pd.Series(daily / len(names), index=names), "actual": actual,
                                    "best": budget.allocate({c: true_curves[c] for c in names if c in true_curves}, daily)})
        for name in ("recommended", "equal", "actual"):
            judged = budget.regret({c: true_curves[c] for c in names if c in true_curves}, allocations[name].fillna(0))
            metrics[f"{'budget' if name == 'recommended' else name + '_split'}_regret_share"] = round(judged["regret_share"], 4)
    return Evaluation(metrics, oracle_metrics, Scored(test, table, curves, true_curves, allocations))


def train(client: Client, *, test_date=None, brand_id=None, seed: int = 0, **_) -> TrainingResult:
    """Fit the touch model on the ``TRAIN_DAYS`` before the test period (default: the last ``PERIOD_DAYS`` of
    touchpoints), then evaluate it on the test period."""
    if brand_id is not None:
        raise InvalidInput("attribution covers every brand (touchpoints have no brand): leave out --brand")
    t0 = time.perf_counter()
    test = test_set(client, test_date=test_date)
    train_start = date.fromisoformat(test.split["train_dates"][0])
    frame = incrementality.prospect_days(client, train_start, test.start)
    X, y, days = incrementality.design(frame)
    estimator = AdditiveTouchModel().fit(X, y, exposure=days)
    channels = frame.attrs["channels"]
    model = TrainedModel(NAME, "attribution", feature_names(channels), CategoryEncoder({}), estimator,
                         {"algorithm": "additive-touch-poisson", "trained_at": datetime.now(timezone.utc).isoformat(),
                          "split": test.split, "prospect_days": float(days.sum()), "training_conversions": float(y.sum())})
    evaluation = evaluate(client, model, test)
    window = (train_start, test.start - timedelta(days=1))
    return TrainingResult(model, evaluation.metrics, evaluation.oracle_metrics, test.split, evaluation.scored, window,
                          {"timings": {"total_s": round(time.perf_counter() - t0, 3)}})


def _batch_date(client: Client, d) -> date:
    return as_date(d, "date") if d else touch_span(client)[1]


def predict_batch(client: Client, model: TrainedModel, d, *, brand_id=None, progress=None, ab_test=None, days: int = PERIOD_DAYS, **_) -> dict:
    """Credit the conversions of the ``days`` before ``d`` (default: the day after the last touchpoint) and recommend
    the split of their mean daily budget; replaces ``d``'s rows of marketing_channel_attribution."""
    if brand_id is not None:
        raise InvalidInput("attribution covers every brand (touchpoints have no brand): leave out --brand")
    t0 = time.perf_counter()
    d = _batch_date(client, d)
    table, _, _ = _credit_of(client, model, d, days)
    rows = pa.table({
        "prediction_date": pa.array([d] * len(table), pa.date32()), "period_days": pa.array([days] * len(table), pa.uint16()),
        **{c: pa.array(table[c].to_numpy()) for c in ("channel_code", "spend_eur", "touches", "conversions", *[f"conversions_{r}" for r in RULES],
                                                    "conversions_per_touch")},
        "cost_per_conversion_eur": pa.array(table["cost_per_conversion_eur"].to_numpy(), mask=table["cost_per_conversion_eur"].isna().to_numpy()),
        **{c: pa.array(table[c].to_numpy(float)) for c in ("curve_top", "curve_half_eur", "curve_shape", "recommended_spend_eur", "expected_conversions")},
        "model_id": pa.array([model.model_id] * len(table), pa.string()),
        "model_version": pa.array([model.version or "unregistered"] * len(table)),
    })
    written = replace_partition(client, "marketing_channel_attribution", d, rows=rows.cast(_STORED_SCHEMA))
    store_campaigns(client, model, d, days, campaign_credit(client, table))
    if progress:
        progress(written)
    return {"model": NAME, "version": model.version, "date": str(d), "period": [str(table.attrs["start"]), str(d - timedelta(days=1))],
            "rows": written, "conversions": round(float(table["conversions"].sum()), 1),
            "daily_budget_eur": round(table.attrs["daily_budget"], 2), "seconds": round(time.perf_counter() - t0, 3),
            "table": "marketing_channel_attribution"}


_STORED_SCHEMA = pa.schema([
    ("prediction_date", pa.date32()), ("period_days", pa.uint16()), ("channel_code", pa.string()), ("spend_eur", pa.float64()),
    ("touches", pa.uint64()), ("conversions", pa.float64()), *[(f"conversions_{r}", pa.float64()) for r in RULES],
    ("conversions_per_touch", pa.float64()), ("cost_per_conversion_eur", pa.float64()), ("curve_top", pa.float64()),
    ("curve_half_eur", pa.float64()), ("curve_shape", pa.float64()), ("recommended_spend_eur", pa.float64()),
    ("expected_conversions", pa.float64()), ("model_id", pa.string()), ("model_version", pa.string()),
])


def store_campaigns(client: Client, model: TrainedModel, d: date, days: int, frame: pd.DataFrame) -> int:
    """Replace ``d``'s rows of marketing_campaign_attribution with ``frame`` (:func:`campaign_credit`); a period
    without campaigns empties them."""
    if frame.empty:
        client.command("ALTER TABLE marketing_campaign_attribution DROP PARTITION {d:Date}", parameters={"d": d})
        return 0
    n = len(frame)
    rows = pa.table({
        "prediction_date": pa.array([d] * n, pa.date32()), "period_days": pa.array([days] * n, pa.uint16()),
        "campaign_id": pa.array(frame["campaign_id"]), "campaign_name": pa.array(frame["campaign_name"]),
        "channel_code": pa.array(frame["channel_code"]), "spend_eur": pa.array(frame["spend_eur"].to_numpy(float)),
        "touches": pa.array(frame["touches"].to_numpy(np.uint64)), "conversions": pa.array(frame["conversions"].to_numpy(float)),
        "cost_per_conversion_eur": pa.array(frame["cost_per_conversion_eur"].to_numpy(float), mask=frame["cost_per_conversion_eur"].isna().to_numpy()),
        "live_at_end": pa.array(frame["live_at_end"].to_numpy(np.uint8)),
        "recommended_spend_eur": pa.array(frame["recommended_spend_eur"].to_numpy(float)),
        "expected_conversions": pa.array(frame["expected_conversions"].to_numpy(float)),
        "model_id": pa.array([model.model_id] * n, pa.string()), "model_version": pa.array([model.version or "unregistered"] * n),
    })
    return replace_partition(client, "marketing_campaign_attribution", d, rows=rows)


def campaign_table(client: Client, model: TrainedModel, d, days: int = PERIOD_DAYS, daily_budget: float | None = None) -> pd.DataFrame:
    """The campaigns of the ``days`` before ``d`` (default: the day after the last touchpoint), as a batch stores them."""
    table, _, _ = _credit_of(client, model, _batch_date(client, d), days, daily_budget)
    return campaign_credit(client, table)


def _credit_of(client: Client, model: TrainedModel, d: date, days: int, daily_budget: float | None = None):
    """The channel table of the ``days`` before ``d`` (see :func:`channel_credit`)."""
    start = d - timedelta(days=days)
    first, end = touch_span(client)
    if start < first or d > end + timedelta(days=1):
        raise NotFound(f"touchpoints cover {first} .. {end - timedelta(days=1)}: the {days} days before {d} need data they do not have; "
                       "pick a date within the data (or fewer days)")
    frame = incrementality.prospect_days(client, start, d)
    user_journeys = journeys.user_journeys(client, start, d)
    paths = journeys.paths(user_journeys)
    paths.attrs["untouched_conversions"] = user_journeys.attrs.get("untouched_conversions", 0)
    return channel_credit(client, model, frame, paths, start, d, daily_budget)


def example_keys(client: Client, d=None) -> list[str]:
    """The channels (every one has a row in a batch)."""
    return [r[0] for r in client.query(journeys.CHANNELS).result_rows]


def stored_dates(client: Client) -> list[date]:
    return [r[0] for r in client.query("SELECT DISTINCT prediction_date FROM marketing_channel_attribution ORDER BY 1").result_rows]


STORED = """
SELECT toString(channel_code) AS channel, conversions, period_days FROM marketing_channel_attribution
WHERE prediction_date = {d:Date}
"""


def realised(client: Client, d) -> dict | None:
    """The stored credit of ``d`` against the conversions each channel truly caused in its period; None without a
    simulation or without stored rows."""
    d = as_date(d, "date")
    rows = client.query(STORED, parameters={"d": d}).result_rows
    if not rows:
        return None
    truth = oracle.channel_conversions(client, d - timedelta(days=int(rows[0][2])), d)
    if truth is None:
        return None
    credit = pd.Series({r[0]: r[1] for r in rows})
    return {"attribution_accuracy": round(shares_accuracy(credit, truth), 4), "rank_correlation": round(_rank_correlation(credit, truth), 4),
            "paid_conversions_true": float(truth.drop("organic", errors="ignore").sum())}


class AttributionServer:
    """Channels' credit for the ``days`` before a date (default: the day after the last touchpoint), computed with the
    serving version."""

    entity = ("channel_code",)
    CACHED_PERIODS = 32  # (date, days) tables kept: a period's credit is the same until its data changes

    def __init__(self, client: Client, model: TrainedModel, cache_ttl_s: float = 0.0):
        self.client, self.model = client, model
        self._tables: dict = {}

    def _table(self, d: date, days: int, budget_eur: float | None) -> pd.DataFrame:
        key = (d, days, int(self.client.command("SELECT count() FROM marketing_touchpoints")))
        if key not in self._tables:
            if len(self._tables) >= self.CACHED_PERIODS:
                self._tables.pop(next(iter(self._tables)))
            self._tables[key] = _credit_of(self.client, self.model, d, days)
        table, curves, _ = self._tables[key]
        if budget_eur is None:
            return table
        allocation = budget.allocate(curves, float(budget_eur)) if curves else pd.Series(dtype=float)  # only the split changes
        table = table.copy()
        table["recommended_spend_eur"] = table["channel_code"].map(allocation).fillna(0.0)
        table["expected_conversions"] = table["channel_code"].map({c: float(f(allocation.get(c, 0.0))) for c, f in curves.items()}).fillna(0.0)
        return table

    def records(self, keys: list, feature_date=None, days: int = PERIOD_DAYS, budget_eur: float | None = None, **_) -> tuple[list[dict], list]:
        d = _batch_date(self.client, feature_date)
        table = self._table(d, int(days), budget_eur)
        wanted = [str(k) for k in keys]
        records = []
        for r in table[table["channel_code"].isin(wanted)].itertuples(index=False):
            records.append({"channel_code": r.channel_code, "period_start": str(table.attrs["start"]), "period_end": str(d),
                            "spend_eur": round(float(r.spend_eur), 2), "touches": int(r.touches), "conversions": round(float(r.conversions), 3),
                            "conversions_by_rule": {rule: round(float(getattr(r, f"conversions_{rule}")), 3) for rule in RULES},
                            "conversions_per_touch": float(r.conversions_per_touch),
                            "cost_per_conversion_eur": None if pd.isna(r.cost_per_conversion_eur) else round(float(r.cost_per_conversion_eur), 2),
                            "recommended_spend_eur": round(float(r.recommended_spend_eur), 2),
                            "expected_conversions": round(float(r.expected_conversions), 4),
                            "model_version": self.model.version or "unregistered"})
        known = {r["channel_code"] for r in records}
        return records, [k for k in wanted if k not in known]

    def frame(self, keys: list, feature_date=None, **options) -> pd.DataFrame:
        return lookup_frame(*self.records(keys, feature_date, **options), "channels are unknown to this version (not in marketing_channels, or new since it was trained: retrain)")

    def cached_record(self, key, **options) -> dict | None:
        return None


def server(client: Client, model: TrainedModel, cache_ttl_s: float = 0.0) -> AttributionServer:
    return AttributionServer(client, model, cache_ttl_s)


def plots(result, plt) -> list[tuple[str, str]]:
    """The channels' shares of the paid conversions by each method against the truth; each channel's fitted response
    curve against the true one, with the recommended and best spend."""
    from ownlens.ml.data.exploration import _figure_html

    scored: Scored = result.test
    table = scored.table[scored.table["channel_code"] != "organic"].set_index("channel_code")
    columns = (["true_conversions"] if "true_conversions" in table else []) + ["conversions", *[f"conversions_{r}" for r in RULES]]
    shares = table[columns] / table[columns].sum().replace(0, np.nan)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    shares.rename(columns={"true_conversions": "truth", "conversions": "incremental"} | {f"conversions_{r}": r for r in RULES}).plot.bar(ax=ax, width=0.85)
    ax.set_ylabel("share of paid conversions")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    out = [("Attribution: each channel's share of the paid subscriptions, by method" + (" and the truth" if "true_conversions" in table else ""), _figure_html(fig))]
    names = sorted(scored.curves)
    fig, axes = plt.subplots(1, len(names), figsize=(2.4 * len(names), 2.6), squeeze=False)
    for ax, c in zip(axes[0], names):
        fitted = scored.curves[c]
        top = max(fitted.ceiling if np.isfinite(fitted.ceiling) else fitted.half * 3, 1.0) * 1.2
        s = np.linspace(0, top, 100)
        ax.plot(s, fitted(s), label="fitted")
        if scored.true_curves and c in scored.true_curves:
            ax.plot(s, scored.true_curves[c](s), ls="--", label="true")
        if "recommended" in scored.allocations:
            ax.axvline(scored.allocations["recommended"].get(c, 0), color="green", lw=0.8)
        ax.set_title(c, fontsize=8)
        ax.set_xlabel("EUR per day", fontsize=7)
    axes[0, 0].set_ylabel("conversions per day")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    out.append(("Response curves: conversions per day against daily spend (green: the recommended spend)", _figure_html(fig)))
    return out
