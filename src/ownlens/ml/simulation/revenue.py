"""The simulated publisher's money: subscriptions (plans, renewals, upgrades, downgrades, failed payments,
cancellations), one-off purchases, and how paid marketing and organic interest turn readers into subscribers.

Each reader's true value process is planted and recorded in ``sim_customer_value``:

* subscriptions renew every 30 days; at each renewal an engaged subscriber cancels with their own monthly
  probability (Beta(0.9, 8) across subscribers, mean 0.10, higher for less loyal readers: the heterogeneity the
  shifted-beta-geometric model assumes), a subscriber who stopped reading cancels with 0.4; 4 % of renewal payments
  fail and half of those end the subscription a week later (involuntary churn); subscribers upgrade with their
  own probability (2 % a month for the typical one, more for those with a higher willingness to pay) and
  downgrade with 1.5 %;
* the billing system is older than the event tracking: 24 months of subscriptions before the first simulated
  day, so cohorts have real retention curves (readers subscribed at the start of the window have no event of it);
* one-off purchases (shop, events, gifts) follow the BG/NBD and Gamma-Gamma processes exactly, with a year of
  history: each buyer buys at a Poisson rate (Gamma(0.5, 60 days) across buyers, faster for readers with a higher
  willingness to pay), drops out for good after any purchase with their own probability (Beta(0.8, 4)), and
  spends Gamma(5, nu) per order with nu ~ Gamma(3.5, 25) (mean order 50 EUR);
* conversions: each day an engaged reader converts organically with their own hazard or through a marketing touch
  (``marketing.py``); ``converted_by`` records which came first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import stats

from ownlens.ml.simulation import catalog as cat
from ownlens.ml.simulation import marketing
from ownlens.ml.simulation.ids import uuid_array, uuid_bytes, uuid_table

NEVER = -(1 << 40)  # day index of something that does not happen
PERIOD_DAYS = 30
HISTORY_DAYS = 730  # subscriptions this far before the first simulated day
PURCHASE_HISTORY_DAYS = 365
# code, name, tier, monthly price (EUR)
PLANS = (("basic", "Digital Basic", 1, 7.99), ("premium", "Digital Premium", 2, 12.99), ("all_access", "All Access", 3, 19.99))
PRICES = np.array([p[3] for p in PLANS])
CANCEL_BETA = (0.9, 8.0)
CANCEL_DISENGAGED = 0.4
PAYMENT_FAILURE = 0.04
FAILED_PAYMENT_LOST = 0.5
DOWNGRADE = 0.015
BUYERS = 0.2  # share of readers with a purchase history
BGNBD = dict(r=0.5, alpha=60.0, a=0.8, b=4.0)  # purchase rate per day ~ Gamma(r, alpha); dropout ~ Beta(a, b)
GAMMA_GAMMA = dict(p=5.0, q=3.5, gamma=25.0)
SUBSCRIPTION_EVENTS = ("start", "renewal", "upgrade", "downgrade", "payment_failed", "cancel")


def _std(x):
    x = np.asarray(x, dtype=float)
    return (x - x.mean()) / (x.std() + 1e-12)


@dataclass
class Lifecycles:
    """Subscription events of one batch: parallel arrays (reader, subscription number, day, event, plan, amount)."""

    user: list
    sub: list
    day: list
    event: list
    plan: list
    amount: list

    def add(self, user, sub, day, event, plan, amount):
        for name, v in zip(("user", "sub", "day", "event", "plan", "amount"), (user, sub, day, event, plan, amount)):
            getattr(self, name).append(np.broadcast_to(v, np.shape(user)).copy())

    def arrays(self) -> dict:
        return {k: np.concatenate(getattr(self, k)) if getattr(self, k) else np.zeros(0) for k in
                ("user", "sub", "day", "event", "plan", "amount")}


def _run_subscriptions(rng, log: Lifecycles, user, sub, start, tier, cancel, upgrade, engaged_until, end_day) -> np.ndarray:
    """Simulate subscriptions from ``start`` until cancelled or ``end_day``; returns each one's end day (NEVER: active)."""
    log.add(user, sub, start, 0, tier, PRICES[tier])
    ended = np.full(len(user), NEVER)
    active = start < end_day
    k = 1
    while active.any():
        day = start + PERIOD_DAYS * k
        active &= day < end_day
        idx = np.nonzero(active)[0]
        if len(idx) == 0:
            break
        q = np.where(day[idx] < engaged_until[idx], cancel[idx], CANCEL_DISENGAGED)
        quits = rng.random(len(idx)) < q
        failed = ~quits & (rng.random(len(idx)) < PAYMENT_FAILURE)
        lost = failed & (rng.random(len(idx)) < FAILED_PAYMENT_LOST)
        log.add(user[idx[quits]], sub[idx[quits]], day[idx[quits]], 5, tier[idx[quits]], 0.0)
        log.add(user[idx[failed]], sub[idx[failed]], day[idx[failed]], 4, tier[idx[failed]], 0.0)
        lost_day = day[idx[lost]] + 7
        log.add(user[idx[lost]], sub[idx[lost]], lost_day, 5, tier[idx[lost]], 0.0)
        ended[idx[quits]] = day[idx[quits]]
        ended[idx[lost]] = lost_day
        stays = idx[~quits & ~lost]
        up = (tier[stays] < 2) & (rng.random(len(stays)) < upgrade[stays])
        down = ~up & (tier[stays] > 0) & (rng.random(len(stays)) < DOWNGRADE)
        tier[stays[up]] += 1
        tier[stays[down]] -= 1
        log.add(user[stays[up]], sub[stays[up]], day[stays[up]], 2, tier[stays[up]], 0.0)
        log.add(user[stays[down]], sub[stays[down]], day[stays[down]], 3, tier[stays[down]], 0.0)
        retry = np.isin(stays, idx[failed])
        log.add(user[stays], sub[stays], day[stays] + 3 * retry, 1, tier[stays], PRICES[tier[stays]])
        active[idx[quits | lost]] = False
        k += 1
    return ended


def _purchases(rng, n: int, willingness: np.ndarray, end_day: int):
    """One-off purchases of a batch under BG/NBD + Gamma-Gamma: (reader, day, amount) and each reader's truth."""
    buyer = rng.random(n) < BUYERS
    u_rate = stats.norm.cdf(0.6 * willingness + 0.8 * rng.normal(size=n))
    rate = np.where(buyer, stats.gamma.ppf(u_rate, BGNBD["r"], scale=1 / BGNBD["alpha"]), 0.0)
    dropout = np.where(buyer, rng.beta(BGNBD["a"], BGNBD["b"], n), 0.0)
    nu = rng.gamma(GAMMA_GAMMA["q"], 1 / GAMMA_GAMMA["gamma"], n)
    mean_order = np.where(buyer, GAMMA_GAMMA["p"] / nu, 0.0)
    t = np.where(buyer, rng.uniform(-PURCHASE_HISTORY_DAYS, end_day, n), np.inf)
    dropped = np.full(n, np.nan)
    users, days, amounts = [], [], []
    alive = buyer.copy()
    while alive.any():
        idx = np.nonzero(alive & (t < end_day))[0]
        if len(idx) == 0:
            break
        users.append(idx)
        days.append(t[idx])
        amounts.append(np.round(rng.gamma(GAMMA_GAMMA["p"], 1 / nu[idx]), 2))
        dies = rng.random(len(idx)) < dropout[idx]
        dropped[idx[dies]] = t[idx[dies]]
        alive[idx[dies]] = False
        t[idx] += rng.exponential(1 / np.maximum(rate[idx], 1e-12))
        alive &= t < end_day
    joined = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dtype=dt)
    return (joined(users, np.int64), joined(days, float), joined(amounts, float)), dict(
        purchase_rate_per_day=rate, purchase_dropout=dropout, mean_order_value_eur=mean_order, purchases_dropped_on=dropped)


@dataclass
class Commerce:
    """One batch's subscriptions, purchases, touchpoints and value truth (day indices relative to the first day)."""

    subscribed_on: np.ndarray  # first day of the subscription that converts each reader in the window (NEVER if none)
    start_price: np.ndarray  # the monthly price of the plan each reader would start on
    converted_by: np.ndarray  # "organic", a channel code, "legacy" (subscribed before the window), "" (not a subscriber)
    subscriptions: dict
    purchases: tuple
    touches: tuple
    truth: dict


def simulate_batch(cfg, plan: marketing.Schedule, batch: int, *, first_day, engaged_until, churned_on, organic_on,
                   conversion, fade_hazard, activity) -> Commerce:
    """Marketing touches, conversions, subscriptions and purchases of one batch of readers.

    ``organic_on`` is the day each reader would subscribe without marketing (NEVER if not while engaged).
    """
    rng = np.random.default_rng([cfg.seed, batch, 5])
    n = len(first_day)
    willingness = _std(np.log(conversion / (1 - conversion)))
    cancel = stats.beta.ppf(stats.norm.cdf(0.8 * _std(np.log(fade_hazard)) + 0.6 * rng.normal(size=n)), *CANCEL_BETA)
    upgrade = np.clip(0.02 * np.exp(0.7 * willingness), 0, 0.2)
    start_tier = np.clip((stats.norm.cdf(0.7 * willingness + 0.7 * rng.normal(size=n)) > [[0.6], [0.9]]).sum(0), 0, 2)
    log = Lifecycles([], [], [], [], [], [])

    # the billing history: readers present on the first day may have subscribed up to two years before
    legacy = (first_day == 0) & (rng.random(n) < np.clip(100 * conversion, 0, 0.6))
    li = np.nonzero(legacy)[0]
    l_start = -rng.integers(1, HISTORY_DAYS, len(li))
    l_end = _run_subscriptions(rng, log, li, np.zeros(len(li), dtype=np.int64), l_start, start_tier[li].copy(),
                               cancel[li], upgrade[li], engaged_until[li], cfg.days)
    active_at_start = np.zeros(n, dtype=bool)
    active_at_start[li[(l_end == NEVER) | (l_end > 0)]] = True

    # marketing touches on every day a reader is around; the first converting one of an engaged, unsubscribed day
    alive = np.clip(np.minimum(churned_on, cfg.days) - first_day, 0, None)
    user_of_day = np.repeat(np.arange(n), alive)
    day = first_day[user_of_day] + (np.arange(len(user_of_day)) - np.repeat(np.cumsum(alive) - alive, alive))
    reach = marketing.reach(activity)
    t_user, t_day, t_channel, t_converts = marketing.touches(rng, plan, user_of_day, day, reach)
    effective = t_converts & (t_day < engaged_until[t_user]) & ~active_at_start[t_user]
    later = np.iinfo(np.int64).max
    by_touch = np.full(n, later)
    np.minimum.at(by_touch, t_user[effective], t_day[effective])
    organic = np.where(active_at_start | (organic_on == NEVER), later, organic_on)
    first = np.minimum(organic, by_touch)
    subscribed = first < cfg.days  # conversions after the window are not simulated
    subscribed_on = np.where(subscribed, first, NEVER)
    converted_by = np.full(n, "", dtype=object)
    converted_by[subscribed & (organic <= by_touch)] = "organic"
    via = subscribed & (by_touch < organic)
    if via.any():
        hit = effective & via[t_user] & (t_day == by_touch[t_user])
        first_hit = {}
        for u_, c_ in zip(t_user[hit], t_channel[hit]):
            first_hit.setdefault(int(u_), marketing.CODES[c_])
        for u_, code in first_hit.items():
            converted_by[u_] = code
    converted_by[active_at_start] = "legacy"
    legacy_start = np.full(n, NEVER)
    legacy_start[li] = l_start
    subscribed_on = np.where(active_at_start, legacy_start, subscribed_on)

    wi = np.nonzero(subscribed & ~active_at_start)[0]
    _run_subscriptions(rng, log, wi, np.ones(len(wi), dtype=np.int64), subscribed_on[wi], start_tier[wi].copy(),
                       cancel[wi], upgrade[wi], engaged_until[wi], cfg.days)
    purchases, purchase_truth = _purchases(rng, n, willingness, cfg.days)
    is_subscriber = legacy | subscribed
    truth = dict(
        marketing_reach=reach, converted_by=converted_by,
        monthly_cancel_probability=np.where(is_subscriber, cancel, np.nan),
        upgrade_probability=np.where(is_subscriber, upgrade, np.nan), **purchase_truth,
    )
    return Commerce(subscribed_on, PRICES[start_tier], converted_by, log.arrays(), purchases,
                    (t_user, t_day, t_channel), truth)


def _dates(cfg, day) -> pa.Array:
    return pa.array((np.datetime64(cfg.start) + np.asarray(day, dtype=np.int64).astype("timedelta64[D]")).astype("datetime64[D]"))


def _times(cfg, seconds) -> pa.Array:
    """Seconds from the first simulated midnight as UTC timestamps."""
    epoch = np.datetime64(cfg.start, "s").astype(np.int64)
    return pa.array((epoch + np.asarray(seconds, dtype=np.int64)).astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC"))


def _codes(values, names) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(values, dtype=np.int32)), pa.array(list(names)))


def campaign_ids(cfg, plan: marketing.Schedule) -> np.ndarray:
    return uuid_table([cat.stable_id("campaign", f"{cfg.seed}:{cfg.days}:{i}") for i in range(len(plan.campaigns))])


def fixed_tables(cfg, plan: marketing.Schedule) -> dict[str, pa.Table]:
    """The plans, channels, campaigns, daily spend and channel truth of a simulation."""
    scale = cfg.users / marketing.SPEND_UNIT
    c_ids = campaign_ids(cfg, plan)
    spend_campaign, spend_day, spend = [], [], []
    for i, c in enumerate(plan.campaigns):
        days = np.arange(c.first_day, c.last_day + 1)
        spend_campaign.append(np.full(len(days), i))
        spend_day.append(days)
        spend.append(plan.spend[c.channel, days] * scale)
    spend_campaign, spend_day = np.concatenate(spend_campaign), np.concatenate(spend_day)
    channel_of = np.array([c.channel for c in plan.campaigns])
    return {
        "revenue_subscription_plans": pa.table({"plan_code": [p[0] for p in PLANS], "plan_name": [p[1] for p in PLANS],
                                                "tier": [p[2] for p in PLANS], "monthly_price_eur": [p[3] for p in PLANS]}),
        "marketing_channels": pa.table({"channel_code": marketing.CODES, "channel_name": [c.name for c in marketing.CHANNELS]}),
        "marketing_campaigns": pa.table({
            "campaign_id": uuid_array(c_ids), "channel_code": [marketing.CODES[c.channel] for c in plan.campaigns],
            "campaign_name": [c.name for c in plan.campaigns],
            "start_date": _dates(cfg, [c.first_day for c in plan.campaigns]),
            "end_date": _dates(cfg, [c.last_day for c in plan.campaigns]),
            "daily_budget_eur": [round(c.level * scale, 2) for c in plan.campaigns]}),
        "marketing_spend_daily": pa.table({
            "spend_date": _dates(cfg, spend_day), "campaign_id": uuid_array(c_ids[spend_campaign]),
            "channel_code": _codes(channel_of[spend_campaign], marketing.CODES), "spend_eur": np.round(np.concatenate(spend), 2)}),
        "sim_channel_truth": pa.table({
            "channel_code": marketing.CODES,
            "touches_at_saturation": [c.touches_at_saturation for c in marketing.CHANNELS],
            "half_saturation_eur_per_1k": [c.half_saturation for c in marketing.CHANNELS],
            "hill_shape": [c.shape for c in marketing.CHANNELS],
            "conversion_per_touch": [c.conversion_per_touch for c in marketing.CHANNELS]}),
    }


def batch_tables(cfg, plan: marketing.Schedule, batch: int, com: Commerce, user_ids: np.ndarray, brand_ids: np.ndarray) -> dict[str, pa.Table]:
    """One batch's touchpoints, subscription events, payments and value truth (ids as (n, 16) byte arrays)."""
    rng = np.random.default_rng([cfg.seed, batch, 6])
    campaign_of = np.full((len(marketing.CHANNELS), cfg.days), -1)
    for i, c in enumerate(plan.campaigns):
        campaign_of[c.channel, c.first_day:c.last_day + 1] = i
    c_ids = campaign_ids(cfg, plan)
    t_user, t_day, t_channel = com.touches
    touch_s = t_day * 86400 + rng.integers(0, 86400, len(t_user))

    sub = com.subscriptions
    keep = sub["day"] < cfg.days
    s_user, s_sub, s_day = sub["user"][keep].astype(np.int64), sub["sub"][keep].astype(np.int64), sub["day"][keep].astype(np.int64)
    s_event, s_plan, s_amount = sub["event"][keep].astype(np.int64), sub["plan"][keep].astype(np.int64), sub["amount"][keep]
    pairs, pair_of = np.unique(s_user * 2 + s_sub, return_inverse=True)
    sub_ids = uuid_bytes(rng, len(pairs))
    paid = s_amount > 0
    p_user, p_day, p_amount = com.purchases
    pay_user = np.concatenate([s_user[paid], p_user])
    pay_s = np.concatenate([s_day[paid] * 86400 + rng.integers(0, 86400, int(paid.sum())), np.floor(p_day * 86400)])
    pay_kind = np.concatenate([np.zeros(int(paid.sum()), dtype=np.int64), np.ones(len(p_user), dtype=np.int64)])
    truth = com.truth
    has = lambda x: pa.array(x, mask=np.isnan(x))
    dropped = truth["purchases_dropped_on"]
    return {
        "marketing_touchpoints": pa.table({
            "user_id": uuid_array(user_ids[t_user]), "touched_at": _times(cfg, touch_s),
            "channel_code": _codes(t_channel, marketing.CODES), "campaign_id": uuid_array(c_ids[campaign_of[t_channel, t_day]])}),
        "revenue_subscription_events": pa.table({
            "subscription_id": uuid_array(sub_ids[pair_of]), "user_id": uuid_array(user_ids[s_user]),
            "brand_id": uuid_array(brand_ids[s_user]), "event_date": _dates(cfg, s_day),
            "event_type": _codes(s_event, SUBSCRIPTION_EVENTS), "plan_code": _codes(s_plan, [p[0] for p in PLANS]),
            "amount_eur": s_amount.astype(float)}),
        "revenue_payments": pa.table({
            "payment_id": uuid_array(uuid_bytes(rng, len(pay_user))), "user_id": uuid_array(user_ids[pay_user]),
            "brand_id": uuid_array(brand_ids[pay_user]), "paid_at": _times(cfg, pay_s),
            "kind": _codes(pay_kind, ["subscription", "purchase"]),
            "amount_eur": np.concatenate([s_amount[paid], p_amount]).astype(float)}),
        "sim_customer_value": pa.table({
            "user_id": uuid_array(user_ids), "marketing_reach": truth["marketing_reach"],
            "converted_by": pa.array(truth["converted_by"].astype(str)),
            "monthly_cancel_probability": has(truth["monthly_cancel_probability"]),
            "upgrade_probability": has(truth["upgrade_probability"]),
            "purchase_rate_per_day": has(np.where(truth["purchase_rate_per_day"] > 0, truth["purchase_rate_per_day"], np.nan)),
            "purchase_dropout": has(np.where(truth["purchase_rate_per_day"] > 0, truth["purchase_dropout"], np.nan)),
            "mean_order_value_eur": has(np.where(truth["purchase_rate_per_day"] > 0, truth["mean_order_value_eur"], np.nan)),
            "purchases_dropped_on": pa.array((np.datetime64(cfg.start) + np.nan_to_num(np.floor(dropped)).astype(np.int64).astype("timedelta64[D]")).astype("datetime64[D]"),
                                             mask=np.isnan(dropped))}),
    }
