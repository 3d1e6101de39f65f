"""Incremental attribution: what each channel's touches add to a prospect's daily chance of subscribing, estimated
from every prospect-day (with and without touches, converting or not), and the conversions each channel caused.

Credit-sharing rules (first/last touch, linear, Markov, Shapley) divide *all* conversions among the channels on
their paths, including those of readers who would have subscribed anyway; active readers see more ads and
subscribe more, so those rules over-credit high-volume channels. This model instead separates the baseline from
the touches (a causally motivated attribution in the sense of Dalessandro et al. 2012, the additive probabilistic
model of Shao & Li 2011): a prospect's expected conversions on a day are

    baseline[activity group] + sum_c effect_c * touches_c(that day) + sum_c carryover_c * touches_c(the 7 days before)

fitted by Poisson maximum likelihood with non-negative parameters (identity link). Prospects are grouped into
quintiles of their sessions per day, so that the baseline follows how engaged a reader is: the confounder that
makes the credit rules wrong. A conversion is then credited to channel c with the share of its expected rate
that c's touches make, and to no channel (organic) with the baseline's share. A channel's response curve is its
touches per day as a function of spend (observed, so precise) times the conversions per touch.

A prospect is at risk from the period's start (or their first session) until they convert, or until 30 days after
their last session (the definition of a lapsed reader the churn model uses).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.marketing import budget
from ownlens.ml.models.marketing.journeys import CHANNELS, PROSPECTS, spend_days
from ownlens.ml.models.marketing.touch_model import CARRYOVER_DAYS, GROUPS, AdditiveTouchModel

CURVE_DAYS = 90  # days of spend and touches a channel's delivery curve is fitted on
MAX_TOUCHES = 5  # touches of a channel in a day beyond this count as this many (few prospect-days have more)

PROSPECT_DAYS = "WITH " + PROSPECTS + """,
spans AS (  -- a prospect is at risk from the period's start (or first session) until converting, or 30 days after the last session
    SELECT s.user_id AS user_id,
           greatest(min(toDate(s.session_start)), {start:Date}) AS first_seen,
           ifNull(any(c.converted_on), least(max(toDate(s.session_start)) + 29, {end:Date} - 1)) AS last_day,
           any(c.converted_on) AS converted_on,
           ntile({groups:UInt8}) OVER (ORDER BY count() / (dateDiff('day', min(toDate(s.session_start)), {end:Date}) + 1)) - 1 AS grp
    FROM customer_sessions AS s LEFT JOIN conversions AS c ON c.user_id = s.user_id
    WHERE s.session_start >= toDateTime({start:Date}) - INTERVAL 30 DAY AND s.session_start < toDateTime({end:Date})
      AND s.user_id NOT IN (SELECT user_id FROM subscribers)
    GROUP BY s.user_id
    HAVING last_day >= first_seen
),
touches AS (
    SELECT user_id, toDate(touched_at) + lag AS day,
           sumForEach(arrayMap(ch -> toUInt32(ch = toString(channel_code) AND lag = 0), {channels:Array(String)})) AS same,
           sumForEach(arrayMap(ch -> toUInt32(ch = toString(channel_code) AND lag > 0), {channels:Array(String)})) AS prior
    FROM marketing_touchpoints ARRAY JOIN range(toUInt8({carry:UInt8} + 1)) AS lag
    WHERE touched_at >= toDateTime({start:Date}) - INTERVAL {carry:UInt8} DAY AND touched_at < toDateTime({end:Date})
    GROUP BY user_id, day
)
SELECT p.day AS day, p.grp AS grp,
       if(empty(t.same), arrayResize([toUInt32(0)], length({channels:Array(String)})), arrayMap(x -> least(x, {cap:UInt32}), t.same)) AS same,
       if(empty(t.prior), arrayResize([toUInt32(0)], length({channels:Array(String)})), arrayMap(x -> least(x, {cap:UInt32} * {carry:UInt8}), t.prior)) AS prior,
       count() AS days, countIf(p.day = p.converted_on) AS conversions
FROM (
    SELECT user_id, grp, converted_on, arrayJoin(arrayMap(k -> first_seen + k, range(toUInt32(dateDiff('day', first_seen, last_day) + 1)))) AS day
    FROM spans
) AS p
LEFT JOIN touches AS t ON t.user_id = p.user_id AND t.day = p.day
GROUP BY day, grp, same, prior
SETTINGS join_use_nulls = 1
"""


def prospect_days(client: Client, start: date, end: date) -> pd.DataFrame:
    """Prospect-days of ``[start, end)`` aggregated by day, activity group and touch counts: ``day``, ``grp``,
    ``same`` and ``prior`` (touches per channel that day and in the days before, channels in ``attrs``), ``days``,
    ``conversions``."""
    if end <= start:
        raise InvalidInput(f"the period must end after it starts (got {start} .. {end})")
    channels = [r[0] for r in client.query(CHANNELS).result_rows]
    if not channels:
        raise InvalidInput("marketing_channels is empty: load the channels (and touchpoints) before attributing")
    frame = query_frame(client, PROSPECT_DAYS, {"start": start, "end": end, "channels": channels, "groups": GROUPS,
                                                "carry": CARRYOVER_DAYS, "cap": MAX_TOUCHES})
    frame.attrs["channels"] = channels
    return frame


def design(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X``, ``y`` (conversions) and ``sample_weight`` (prospect-days) of :class:`AdditiveTouchModel` from
    :func:`prospect_days`."""
    same = np.vstack(frame["same"].to_numpy()).astype(float)
    prior = np.vstack(frame["prior"].to_numpy()).astype(float)
    X = np.column_stack([frame["grp"].to_numpy(float), same, prior])
    return X, frame["conversions"].to_numpy(float), frame["days"].to_numpy(float)


def credit(model: AdditiveTouchModel, frame: pd.DataFrame, channels) -> pd.Series:
    """Conversions of the period credited to ``organic`` and each channel: each conversion shared in proportion to
    what the baseline and each channel's touches contribute to its expected rate."""
    X, y, _ = design(frame)
    parts = model.contributions(X)
    rate = np.maximum(parts.sum(1), 1e-15)
    return pd.Series((parts * (y / rate)[:, None]).sum(0), index=["organic", *channels], name="conversions")


TOUCHES_PER_DAY = """
SELECT toDate(touched_at) AS day, toString(channel_code) AS channel, count() AS touches
FROM marketing_touchpoints
WHERE touched_at >= toDateTime({start:Date}) AND touched_at < toDateTime({end:Date})
GROUP BY day, channel
"""


READERS_PER_DAY = """
SELECT toDate(session_start) AS day, uniq(user_id) AS readers FROM customer_sessions
WHERE session_start >= toDateTime({start:Date}) AND session_start < toDateTime({end:Date})
GROUP BY day
"""


def response_curves(client: Client, model: AdditiveTouchModel, frame: pd.DataFrame, start: date, end: date,
                    curve_days: int = CURVE_DAYS) -> dict[str, budget.ResponseCurve]:
    """Each channel's conversions per day as a function of its daily spend: its touches per day fitted against spend
    (a Hill curve over every touch of the ``curve_days`` before ``end``: what the ad platforms deliver for a budget, no
    outcome, and a month holds too few budget levels to find the bend), times the share of the period's touches that
    reached prospects, times its conversions per touch. Channels without 8 days at 3 or more spend levels get none."""
    first = min(start, end - timedelta(days=curve_days))
    touches = query_frame(client, TOUCHES_PER_DAY, {"start": first, "end": end})
    touches["day"] = pd.to_datetime(touches["day"])
    touches["channel"] = touches["channel"].astype(str)
    days = spend_days(client, first, end).merge(touches, on=["day", "channel"], how="left").fillna({"touches": 0.0})
    # the audience grows and shrinks over months: touches per day in today's audience (readers in the 7 days before),
    # expressed at the period's mean audience, so that a flight's time does not pass for its budget's effect
    readers = query_frame(client, READERS_PER_DAY, {"start": first - timedelta(days=6), "end": end})
    readers = readers.set_index(pd.to_datetime(readers["day"]))["readers"].astype(float)
    readers = readers.reindex(pd.date_range(first - timedelta(days=6), end, inclusive="left")).rolling(7, min_periods=1).mean()
    audience = readers.reindex(days["day"]).to_numpy()
    period_audience = readers[readers.index >= pd.Timestamp(start)].mean()
    days["touches"] = days["touches"] * np.where(audience > 0, period_audience / np.where(audience > 0, audience, 1.0), 1.0)
    # a channel needs days at several spend levels for a curve; one without (new, paused, always on one budget)
    # gets none, so no recommendation, rather than stopping the others'
    spent = days[days["spend"] > 0].groupby("channel")["spend"].agg(["count", "nunique"])
    fit = spent[(spent["count"] >= budget.MIN_DAYS) & (spent["nunique"] >= 3)].index
    days = days[days["channel"].isin(fit)]
    if days.empty:
        return {}
    curves = budget.fit_curves(days.rename(columns={"touches": "conversions"})[["channel", "spend", "conversions"]])
    same = (np.vstack(frame["same"].to_numpy()).astype(float) * frame["days"].to_numpy(float)[:, None]).sum(0)
    channels = frame.attrs["channels"]
    in_period = days[days["day"] >= pd.Timestamp(start)].groupby("channel")["touches"].sum()
    to_prospects = (pd.Series(same, index=channels) / in_period.reindex(channels)).fillna(0.0).clip(upper=1.0)
    per_touch = pd.Series(model.per_touch(), index=channels) * to_prospects
    return {c: budget.ResponseCurve(c, f.top * float(per_touch.get(c, 0.0)), f.half, f.shape, f.ceiling) for c, f in curves.items()}
