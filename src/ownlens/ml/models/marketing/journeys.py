"""Marketing data from the warehouse, shaped for attribution and budget optimisation: each prospect's journey of
touchpoints (to a subscription or to nothing) and each channel's daily spend.

A journey belongs to a reader who was not a subscriber when the period began. A converting journey holds the
touches of the ``lookback_days`` up to and including the day of the first subscription in the period (touches are
dated, not timed, against it: a same-day touch counts); a non-converting one holds the touches in the period.
Readers who subscribed without any touch have no journey (attribution has nothing to credit), and are counted.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.marketing.attribution import SEPARATOR

LOOKBACK_DAYS = 30

# a period's prospects (not subscribed when it began) and their first subscription in it: the CTEs every query of
# journeys and prospect-days starts from
PROSPECTS = """
subscribers AS (
    SELECT user_id FROM revenue_subscription_events WHERE event_date < {start:Date}
    GROUP BY user_id, subscription_id HAVING countIf(event_type = 'cancel') = 0
),
conversions AS (
    SELECT user_id, min(event_date) AS converted_on
    FROM revenue_subscription_events
    WHERE event_type = 'start' AND event_date >= {start:Date} AND event_date < {end:Date}
      AND user_id NOT IN (SELECT user_id FROM subscribers)
    GROUP BY user_id
)"""

JOURNEYS = "WITH " + PROSPECTS + """
SELECT t.user_id AS user_id, any(c.converted_on) AS converted_on,
       arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((t.touched_at, toString(t.channel_code))))) AS path
FROM marketing_touchpoints AS t
LEFT JOIN conversions AS c ON c.user_id = t.user_id
WHERE t.touched_at >= toDateTime({start:Date}) - INTERVAL {lookback:UInt16} DAY
  AND t.touched_at < toDateTime({end:Date})
  AND t.user_id NOT IN (SELECT user_id FROM subscribers)
  AND if(c.converted_on IS NULL,
         toDate(t.touched_at) >= {start:Date},
         toDate(t.touched_at) <= c.converted_on AND toDate(t.touched_at) > c.converted_on - {lookback:UInt16})
GROUP BY t.user_id
SETTINGS join_use_nulls = 1
"""
UNTOUCHED = "WITH " + PROSPECTS + """
SELECT count() FROM conversions AS c
WHERE (c.user_id, c.converted_on) NOT IN (
    SELECT user_id, toDate(touched_at) + n FROM marketing_touchpoints
    ARRAY JOIN range(toUInt16({lookback:UInt16})) AS n
    WHERE touched_at >= toDateTime({start:Date}) - INTERVAL {lookback:UInt16} DAY AND touched_at < toDateTime({end:Date}))
"""
SPEND = """
SELECT spend_date AS day, toString(channel_code) AS channel, sum(spend_eur) AS spend
FROM marketing_spend_daily
WHERE spend_date >= {start:Date} AND spend_date < {end:Date}
GROUP BY day, channel
"""
CHANNELS = "SELECT DISTINCT toString(channel_code) FROM marketing_channels ORDER BY 1"


def _check_period(start: date, end: date) -> None:
    if end <= start:
        raise InvalidInput(f"the period must end after it starts (got {start} .. {end})")


def user_journeys(client: Client, start: date, end: date, lookback_days: int = LOOKBACK_DAYS) -> pd.DataFrame:
    """One row per prospect touched in ``[start, end)``: ``user_id``, ``converted_on`` (NaT if not), ``path``
    (channel codes in time order); ``attrs["untouched_conversions"]``: conversions with no touch to credit."""
    _check_period(start, end)
    params = {"start": start, "end": end, "lookback": lookback_days}
    frame = query_frame(client, JOURNEYS, params)
    frame["converted_on"] = pd.to_datetime(frame["converted_on"])
    frame["path"] = frame["path"].map(tuple)
    frame.attrs["untouched_conversions"] = int(client.command(UNTOUCHED, parameters=params))
    return frame


def paths(journeys: pd.DataFrame) -> pd.DataFrame:
    """Distinct paths with their ``conversions`` and ``nulls``: the input of ``attribution``."""
    if journeys.empty:
        raise InvalidInput("no touchpoints in the period: there is nothing to attribute")
    converted = journeys["converted_on"].notna()
    key = journeys["path"].map(SEPARATOR.join)
    out = pd.DataFrame({"path": key, "conversions": converted.astype(int), "nulls": (~converted).astype(int)})
    return out.groupby("path", as_index=False, sort=True).sum()


def daily_credit(journeys: pd.DataFrame, totals: pd.Series) -> pd.DataFrame:
    """Conversions credited to each channel on each day: each converting journey shared equally by its distinct
    channels, then scaled per channel so the totals are ``totals`` (a method's attribution)."""
    conv = journeys[journeys["converted_on"].notna()]
    rows = [(day, ch, 1.0 / len(set(p))) for day, p in zip(conv["converted_on"], conv["path"]) for ch in set(p)]
    credit = pd.DataFrame(rows, columns=["day", "channel", "conversions"]).groupby(["day", "channel"], as_index=False).sum()
    base = credit.groupby("channel")["conversions"].sum()
    scale = (totals.reindex(base.index).fillna(0) / base.where(base > 0)).fillna(0)
    credit["conversions"] *= credit["channel"].map(scale)
    return credit


def spend_days(client: Client, start: date, end: date) -> pd.DataFrame:
    """Every channel's spend on every day of ``[start, end)`` (0 on days without a campaign)."""
    _check_period(start, end)
    spend = query_frame(client, SPEND, {"start": start, "end": end})
    channels = [r[0] for r in client.query(CHANNELS).result_rows]
    grid = pd.MultiIndex.from_product([pd.date_range(start, end, inclusive="left"), channels], names=["day", "channel"])
    spend["day"] = pd.to_datetime(spend["day"])
    spend["channel"] = spend["channel"].astype(str)
    return spend.set_index(["day", "channel"])["spend"].reindex(grid, fill_value=0.0).reset_index()


def campaign_days(client: Client, journeys: pd.DataFrame, totals: pd.Series, start: date, end: date) -> pd.DataFrame:
    """``channel``, ``spend``, ``conversions`` per channel and day: what response curves are fitted on."""
    credit = daily_credit(journeys, totals)
    days = spend_days(client, start, end).merge(credit, on=["day", "channel"], how="left")
    days["conversions"] = days["conversions"].fillna(0.0)
    return days[np.isfinite(days["spend"])]
