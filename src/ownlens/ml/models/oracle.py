"""The simulator's truth, in one place and only for evaluation: what the best possible model would have scored.

Every read of a ``sim_`` table by a model is here, called when a model is evaluated, never when features are
built, models fit, or predictions made. On a warehouse without a simulation every function returns None (or
NaN), and models are evaluated without an oracle.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.features.customer import LABEL_HORIZON_DAYS
from ownlens.ml.simulation import catalog as cat
from ownlens.ml.simulation.truth import build_truth
from ownlens.ml.warehouse import table_exists

SIMULATED = "SELECT count() > 0 FROM sim_runs"
TRUTH_ROWS = """
SELECT (SELECT count() FROM sim_user_truth WHERE feature_date = {d:Date}) = (SELECT count() FROM customer_user_features
        WHERE feature_date = {d:Date})
"""


def simulated(client: Client) -> bool:
    """Whether the warehouse holds a simulation (and so the true answers)."""
    return table_exists(client, "sim_runs") and bool(int(client.command(SIMULATED)))


def ensure_user_truth(client: Client, dates: list[date]) -> bool:
    """sim_user_truth for ``dates``, built where missing or stale (features rebuilt since); False without a simulation."""
    if not simulated(client):
        return False
    for d in dict.fromkeys(dates):
        if not int(client.command(TRUTH_ROWS, parameters={"d": d})):
            build_truth(client, d, LABEL_HORIZON_DAYS)
    return True


def attach(client: Client, spec, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows of a supervised model: its entity ids and feature_date) with an ``oracle`` column: the true
    probability or expectation of each row's label, NaN for every row when any is unknown (a partial oracle is none)."""
    out = frame.copy()
    out["oracle"] = float("nan")
    sql = spec.rows.oracle
    if sql is None or frame.empty:
        return out
    dates = sorted(set(pd.to_datetime(frame["feature_date"]).dt.date))
    if not ensure_user_truth(client, dates):
        return out
    truth = query_frame(client, sql, {"dates": dates})
    if truth.empty:
        return out
    keys = [*spec.entity, "feature_date"]
    truth["feature_date"] = pd.to_datetime(truth["feature_date"]).dt.date
    joined = out.drop(columns="oracle").assign(feature_date=pd.to_datetime(out["feature_date"]).dt.date).merge(
        truth.drop_duplicates(keys), on=keys, how="left")
    if joined["oracle"].notna().all():
        out["oracle"] = joined["oracle"].to_numpy(dtype=float)
    return out


# -- the latent traits of users, for segments -------------------------------------------------------------
USER_TRAITS = """
SELECT toString(u.user_id) AS user_id, log(u.activity_rate) AS log_activity_rate, u.ad_responsiveness AS ad_responsiveness,
       u.click_affinity AS click_affinity, t.churn_probability AS churn_probability,
       t.conversion_probability AS conversion_probability
FROM sim_users AS u
INNER JOIN sim_user_truth AS t ON t.user_id = u.user_id AND t.feature_date = {d:Date}
WHERE u.user_id IN (SELECT toUUID(arrayJoin({users:Array(String)})))
"""


def user_traits(client: Client, d: date, users: list[str]) -> pd.DataFrame | None:
    """The true latent traits of ``users`` on ``d`` (activity, churn and conversion probability, ad responsiveness,
    click affinity); None without a simulation."""
    if not ensure_user_truth(client, [d]):
        return None
    traits = query_frame(client, USER_TRAITS, {"d": d, "users": list(users)})
    return None if traits.empty else traits


def separation(traits: pd.DataFrame, users: pd.Series, labels: np.ndarray) -> dict:
    """Share of each trait's variance lying between groups (eta squared), and their mean."""
    frame = traits.merge(pd.DataFrame({"user_id": users.to_numpy(), "segment": labels}), on="user_id")
    out = {}
    for trait in [c for c in traits.columns if c != "user_id"]:
        values = frame[trait].astype(float)
        total = ((values - values.mean()) ** 2).sum()
        between = (frame.groupby("segment")[trait].transform("mean") - values.mean()).pow(2).sum()
        out[trait] = float(between / total) if total > 0 else 0.0
    out["mean"] = float(np.mean(list(out.values())))
    return out


# -- what users would read, for recommendations -----------------------------------------------------------
READERS = "SELECT toString(s.user_id) AS user_id, toString(s.home_brand_id) AS home, s.topic_preferences AS prefs FROM sim_users AS s WHERE s.user_id IN {users:Array(UUID)}"
ARTICLES = "SELECT toString(s.article_id) AS article_id, s.category_index AS category_index FROM sim_articles AS s WHERE s.article_id IN {a:Array(UUID)}"
READ_SHARES = """
SELECT toString(e.article_id) AS article_id, count() / sum(count()) OVER (PARTITION BY e.brand_id, e.category_id) AS share
FROM editorial_content_events AS e WHERE e.event_type = 'article_view' AND e.article_id IN {a:Array(UUID)}
  AND e.event_timestamp >= {d:Date} AND e.event_timestamp < {end:Date} GROUP BY e.article_id, e.brand_id, e.category_id
"""


def reading_scores(client: Client, candidates: pd.DataFrame, users: np.ndarray, d: date, end: date) -> np.ndarray | None:
    """users x candidates: each user's true brand x category reading weights times each candidate's share of its
    brand-category's reads between ``d`` and ``end``; None without a simulation."""
    if not simulated(client):
        return None
    truth = query_frame(client, READERS, {"users": list(users)})
    if truth.empty:
        return None
    articles = candidates["article_id"].tolist()
    arts = query_frame(client, ARTICLES, {"a": articles})
    share = query_frame(client, READ_SHARES, {"a": articles, "d": d, "end": end})
    brand_ids = [cat.stable_id("brand", b[0]) for b in cat.BRANDS]
    mix = np.array([b[4] for b in cat.BRANDS], dtype=float)
    cand = candidates.merge(arts, on="article_id", how="left").merge(share, on="article_id", how="left")
    b_idx = cand["brand_id"].map({str(b): i for i, b in enumerate(brand_ids)}).to_numpy()
    c_idx = cand["category_index"].fillna(0).astype(int).to_numpy()
    truth = truth.set_index("user_id").reindex(users)
    prefs = np.stack([np.asarray(p, dtype=float) if isinstance(p, (list, np.ndarray)) else np.full(mix.shape[1], 1 / mix.shape[1])
                      for p in truth["prefs"]])
    home = truth["home"].map({str(b): i for i, b in enumerate(brand_ids)}).fillna(0).astype(int).to_numpy()
    n_brands = len(brand_ids)
    p_brand = np.where(home[:, None] == np.arange(n_brands)[None, :], 0.85, 0.15 / (n_brands - 1))
    cat_given_brand = prefs[:, None, :] * mix[None, :, :]
    cat_given_brand /= cat_given_brand.sum(2, keepdims=True)
    weight = p_brand[:, b_idx] * cat_given_brand[:, b_idx, c_idx]
    return weight * cand["share"].fillna(0).to_numpy()[None, :]


# -- true click rates of ads, for placements ----------------------------------------------------------------
AD_RESPONSIVENESS = """
SELECT toString(s.user_id) AS user_id, s.ad_responsiveness AS ad_ctr, count() AS impressions
FROM customer_events AS e INNER JOIN sim_users AS s ON s.user_id = e.user_id
WHERE e.event_type = 'ad_impression' AND e.event_timestamp >= {d:Date} AND e.event_timestamp < {end:Date}
  AND e.user_id IN {users:Array(UUID)}
GROUP BY user_id, ad_ctr
"""


def ad_revenue(client: Client, users: list[str], d: date, days: int, placements: list[str]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray] | None:
    """For ``users`` with ad impressions in the ``days`` from ``d``: their impressions, the true revenue per 1,000
    impressions of each of ``placements`` (users x placements), and the current allocation's placement shares;
    None without a simulation."""
    if not simulated(client):
        return None
    truth = query_frame(client, AD_RESPONSIVENESS, {"d": d, "end": d + timedelta(days=days), "users": users})
    if truth.empty:
        return None
    order = [cat.AD_PLACEMENTS.index(p) for p in placements]
    cpm, lift = cat.AD_CPM_EUR[order], cat.AD_PLACEMENT_CTR_LIFT[order]
    revenue = cpm[None, :] + 1000 * truth["ad_ctr"].to_numpy()[:, None] * lift[None, :] * cat.AD_CLICK_EUR
    share = cat.AD_PLACEMENT_SHARE[order] / cat.AD_PLACEMENT_SHARE[order].sum()
    return truth, revenue, share


CAUSED_CONVERSIONS = """
SELECT toString(v.converted_by) AS channel, count() AS conversions
FROM sim_customer_value AS v INNER JOIN sim_users AS u ON u.user_id = v.user_id
WHERE u.subscribed_on >= {start:Date} AND u.subscribed_on < {end:Date} AND v.converted_by NOT IN ('', 'legacy')
GROUP BY channel
"""
# reach-days of readers who could be converted (engaged, not subscribed) in the period, per day
ELIGIBLE_REACH = """
SELECT sum(v.marketing_reach * greatest(0, dateDiff('day', greatest(u.first_day, {start:Date}),
           least(u.engaged_until, ifNull(u.subscribed_on, {end:Date}), {end:Date})))) / dateDiff('day', {start:Date}, {end:Date})
FROM sim_users AS u INNER JOIN sim_customer_value AS v ON v.user_id = u.user_id
WHERE ifNull(u.subscribed_on, {end:Date}) >= {start:Date}
"""
SIMULATED_USERS = "SELECT users FROM sim_runs ORDER BY created_at DESC LIMIT 1"


def channel_conversions(client: Client, start: date, end: date) -> pd.Series | None:
    """Subscriptions in ``[start, end)`` that each channel's touches caused (``organic``: none did); None without a
    simulation."""
    if not simulated(client):
        return None
    caused = query_frame(client, CAUSED_CONVERSIONS, {"start": start, "end": end})
    return caused.set_index("channel")["conversions"].astype(float).rename("conversions")


def channel_curves(client: Client, start: date, end: date) -> dict | None:
    """Each channel's true response curve over ``[start, end)``: expected conversions it causes per day at a daily
    spend in EUR (the eligible readers' reach times its touches and conversion per touch); None without a simulation."""
    from ownlens.ml.models.marketing.budget import ResponseCurve
    from ownlens.ml.simulation import marketing

    if not simulated(client):
        return None
    reach = float(client.command(ELIGIBLE_REACH, parameters={"start": start, "end": end}) or 0.0)
    scale = int(client.command(SIMULATED_USERS)) / marketing.SPEND_UNIT
    return {c.code: ResponseCurve(c.code, reach * c.touches_at_saturation * c.conversion_per_touch, c.half_saturation * scale, c.shape)
            for c in marketing.CHANNELS}


def channel_effects(client: Client) -> pd.Series | None:
    """Each channel's true conversions per touch (of an engaged, unsubscribed reader); None without a simulation."""
    if not simulated(client):
        return None
    rows = client.query("SELECT toString(channel_code), conversion_per_touch FROM sim_channel_truth").result_rows
    return pd.Series(dict(rows), name="conversions_per_touch", dtype=float) if rows else None


VALUE_TRUTH = """
SELECT toString(v.user_id) AS user_id, ifNull(v.purchase_rate_per_day, 0) AS rate, ifNull(v.purchase_dropout, 0) AS dropout,
       ifNull(v.mean_order_value_eur, 0) AS mean_order, v.purchases_dropped_on AS dropped_on,
       ifNull(v.monthly_cancel_probability, 0) AS cancel, u.engaged_until AS engaged_until
FROM sim_customer_value AS v INNER JOIN sim_users AS u ON u.user_id = v.user_id
WHERE v.user_id IN (SELECT user_id FROM revenue_payments WHERE paid_at < toDateTime({cutoff:Date}))
   OR v.user_id IN (SELECT user_id FROM revenue_subscription_events WHERE event_type = 'start' AND event_date < {cutoff:Date})
"""  # (every customer before the cutoff, selected in ClickHouse: a list of 230k ids as a parameter took minutes at 1M users)


def customer_value(client: Client, buyers: list[str], subscriptions: pd.DataFrame, cutoff: date, days: int):
    """What a model knowing each customer's true value process would predict for the ``days`` from ``cutoff``: the
    buyers' expected purchases and purchase revenue (given their true rate, dropout, mean order and whether they were
    still buying at the cutoff) and each active subscription's expected renewal revenue (given the subscriber's true
    cancellation probability, the higher one once they stop reading, and failed payments); None without a simulation."""
    from ownlens.ml.simulation import revenue as sim_revenue

    if not simulated(client):
        return None
    truth = query_frame(client, VALUE_TRUTH, {"cutoff": cutoff}).set_index("user_id")
    b = truth.reindex(buyers)
    alive = b["dropped_on"].isna() | (pd.to_datetime(b["dropped_on"]) >= pd.Timestamp(cutoff))
    rate, dropout = b["rate"].fillna(0).to_numpy(float), b["dropout"].fillna(0).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(dropout > 0, (1 - np.exp(-rate * dropout * days)) / dropout, rate * days)
    purchases = np.where(alive.to_numpy(), np.nan_to_num(expected), 0.0)
    revenue = purchases * b["mean_order"].fillna(0).to_numpy(float)
    s = truth.reindex(subscriptions["user_id"].astype(str))
    started = subscriptions["started_on"]
    age = (pd.Timestamp(cutoff) - started).dt.days.to_numpy()
    engaged = (pd.to_datetime(s["engaged_until"]) - started.to_numpy()).dt.days.to_numpy(dtype=float, na_value=0)
    cancel = s["cancel"].fillna(0).to_numpy(float)
    kept = 1 - sim_revenue.PAYMENT_FAILURE * sim_revenue.FAILED_PAYMENT_LOST
    period = sim_revenue.PERIOD_DAYS
    k = (age + period - 1) // period  # the first renewal on or after the cutoff
    survive = np.ones(len(age))
    paid = np.zeros(len(age))
    while True:
        day = k * period
        inside = day < age + days
        if not inside.any():
            break
        q = np.where(day < engaged, cancel, sim_revenue.CANCEL_DISENGAGED)
        survive = np.where(inside, survive * (1 - q) * kept, survive)
        paid += np.where(inside, survive, 0.0)
        k = k + 1
    return purchases, revenue, paid * subscriptions["monthly_price_eur"].to_numpy(float)



def _subscriber_oracle(probability: str) -> str:
    """SQL of the true probability of a subscriber outcome in the 30 days from each feature date: the one renewal in
    them (``days_to_renewal`` away) with the subscriber's true cancellation probability (the higher one once they
    stop reading), failed payments, and their true upgrade probability (``simulation/revenue.py``)."""
    from ownlens.ml.simulation import revenue as r

    lost = r.PAYMENT_FAILURE * r.FAILED_PAYMENT_LOST
    q = (f"if(f.feature_date + f.days_to_renewal < u.engaged_until, ifNull(v.monthly_cancel_probability, 0), {r.CANCEL_DISENGAGED})")
    up = f"(ifNull(v.upgrade_probability, 0) * (f.plan_tier < {len(r.PLANS)}))"
    expr = probability.format(q=q, up=up, lost=lost, down=r.DOWNGRADE, top=len(r.PLANS))
    return f"""
SELECT toString(f.user_id) AS user_id, f.feature_date AS feature_date, {expr} AS oracle
FROM customer_subscription_features AS f
INNER JOIN sim_customer_value AS v ON v.user_id = f.user_id
INNER JOIN sim_users AS u ON u.user_id = f.user_id
WHERE f.feature_date IN {{dates:Array(Date)}}
"""

# P(cancel, or lose the subscription to a failed payment a week after the renewal, or downgrade)
CANCEL_OR_DOWNGRADE_ORACLE = _subscriber_oracle(
    "{q} + (1 - {q}) * {lost} * (f.days_to_renewal + 7 < 30) + (1 - {q}) * (1 - {lost}) * (1 - {up}) * {down} * (f.plan_tier > 1)")

# P(upgrade): at the renewal, staying (no cancellation, no failed payment lost) and then moving up a plan
UPGRADE_ORACLE = _subscriber_oracle("(1 - {q}) * (1 - {lost}) * {up}")
