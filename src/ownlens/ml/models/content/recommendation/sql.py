"""The SQL of the recommender and the reads that run it: a date's candidates, users' reading profiles and reads,
the stored recommendations. A set of users is a subquery returning ``user_id``; the queries that take one are
built by the functions below (``numbered``, ``profile``, ``reads``), so no SQL text is ever patched."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import query_frame
from ownlens.ml.models.spec import BRAND_FILTER
from ownlens.ml.registry.abtests import variant_sql

CANDIDATE_DAYS, PROFILE_DAYS, RECENT_DAYS, HORIZON_DAYS = 3, 30, 7, 7
MAX_CANDIDATES = 2000

CANDIDATES = """
SELECT toString(a.article_id) AS article_id, a.brand_id AS brand_id, a.category_id AS category_id, a.topic AS topic,
       dateDiff('hour', a.publish_timestamp, toDateTime({d:Date}, 'UTC')) AS age_hours, ifNull(v.views_1d, 0) AS views_1d
FROM (SELECT article_id, brand_id, category_id, topic, publish_timestamp FROM editorial_articles FINAL
      WHERE publish_timestamp >= {d:Date} - {candidate_days:UInt32} AND publish_timestamp < {d:Date}) AS a
LEFT JOIN (SELECT article_id, count() AS views_1d FROM editorial_content_events
           WHERE event_type = 'article_view' AND event_timestamp >= {d:Date} - 1 AND event_timestamp < {d:Date}
           GROUP BY article_id) AS v ON v.article_id = a.article_id
ORDER BY a.publish_timestamp DESC, a.article_id LIMIT {max_candidates:UInt32}
SETTINGS join_use_nulls = 1
"""

# users: the users of D (of {brand}) in one hash part, of one A/B arm while a test runs ({test} = '' otherwise)
BATCH_USERS = f"""
SELECT uf.user_id FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}} AND cityHash64(uf.user_id) % {{parts:UInt64}} = {{part:UInt64}} AND {BRAND_FILTER}
  AND ({{test:String}} = '' OR {variant_sql('uf.user_id')} = {{arm:String}})
"""
BATCH_USER_COUNT = f"SELECT count() FROM customer_user_features AS uf WHERE uf.feature_date = {{d:Date}} AND {BRAND_FILTER}"
GIVEN_USERS = "SELECT arrayJoin({users:Array(UUID)}) AS user_id"
EVERYONE = "SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date}"
# a hash sample of D's users who read any candidate in the horizon (the users a ranking can be judged on)
JUDGED_USERS = f"""
SELECT uf.user_id FROM customer_user_features AS uf
WHERE uf.feature_date = {{d:Date}} AND {BRAND_FILTER} AND uf.user_id IN (
    SELECT user_id FROM editorial_content_events WHERE event_type = 'article_view' AND event_timestamp >= {{d:Date}}
      AND event_timestamp < {{d:Date}} + {{horizon:UInt32}} AND article_id IN {{candidates:Array(UUID)}})
ORDER BY cityHash64(uf.user_id) LIMIT {{sample:UInt32}}
"""


def numbered(users: str) -> str:
    """The users of a query numbered 0..n-1 in user_id order: rows come back as these numbers, not as text ids."""
    return f"SELECT user_id, toUInt32(row_number() OVER (ORDER BY user_id) - 1) AS i FROM ({users})"


def ids(users: str) -> str:
    """The users' ids as text, in the order :func:`numbered` numbers them (by the UUID, not its text)."""
    return f"SELECT toString(q.user_id) AS id FROM ({users}) AS q ORDER BY q.user_id"


def profile(users: str) -> str:
    """Reading profile: views per (user, brand, category, topic) in the 30 days before D, as 1-based indexes of
    the date's vocabularies (0: outside them)."""
    return f"""
SELECT u.i AS i, indexOf({{brands:Array(UUID)}}, e.brand_id) AS b,
       indexOf({{categories:Array(UUID)}}, assumeNotNull(e.category_id)) AS c, indexOf({{topics:Array(String)}}, a.topic) AS t,
       count() AS n
FROM editorial_content_events AS e
INNER JOIN ({numbered(users)}) AS u ON u.user_id = e.user_id
LEFT JOIN (SELECT article_id, topic FROM editorial_articles FINAL) AS a ON a.article_id = e.article_id
WHERE e.event_type = 'article_view' AND e.event_timestamp >= {{d:Date}} - {{profile_days:UInt32}} AND e.event_timestamp < {{d:Date}}
  AND e.user_id IN ({users})
GROUP BY i, b, c, t
"""


def reads(users: str) -> str:
    """Views of the candidates between {start:Date} and {end:Date} by the users, as (user number, 1-based item, n)."""
    return f"""
SELECT u.i AS i, indexOf({{candidates:Array(UUID)}}, e.article_id) AS item, count() AS n
FROM editorial_content_events AS e
INNER JOIN ({numbered(users)}) AS u ON u.user_id = e.user_id
WHERE e.event_type = 'article_view' AND e.event_timestamp >= {{start:Date}} AND e.event_timestamp < {{end:Date}}
  AND e.article_id IN {{candidates:Array(UUID)}} AND e.user_id IN ({users})
GROUP BY i, item
"""


def candidates(client: Client, d: date) -> pd.DataFrame:
    """The articles published in the 3 days before ``d`` (newest first), with their age and views of the day before."""
    return query_frame(client, CANDIDATES, {"d": d, "candidate_days": CANDIDATE_DAYS, "max_candidates": MAX_CANDIDATES})


def user_reads(client: Client, cands: pd.DataFrame, d: date, users: str, params: dict) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The users of the query ``users`` (with ``params``): their ids, reading profiles over ``cands``' vocabularies and
    reads of the candidates in the week before ``d``; row i of the profile and reads is user ids[i]."""
    from ownlens.ml.models.content.recommendation.signals import vocabularies

    found = query_frame(client, ids(users), params)["id"].to_numpy(str)
    prof = query_frame(client, profile(users), {**params, **vocabularies(cands), "d": d, "profile_days": PROFILE_DAYS})
    recent = read_counts(client, cands, users, params, d - timedelta(days=RECENT_DAYS), d)
    return found, prof, recent


def read_counts(client: Client, cands: pd.DataFrame, users: str, params: dict, start: date, end: date) -> pd.DataFrame:
    """(i, item, n): views of the candidates between ``start`` and ``end`` by the users of ``users``, numbered."""
    return query_frame(client, reads(users), {**params, "candidates": cands["article_id"].tolist(), "start": start, "end": end})


def everyone_reads(client: Client, cands: pd.DataFrame, d: date) -> pd.DataFrame:
    """Reads of the candidates in the week before ``d`` by every user with features that day (for co-reading)."""
    return read_counts(client, cands, EVERYONE, {"d": d}, d - timedelta(days=RECENT_DAYS), d)


RAW = ("CREATE TABLE {raw:Identifier} (user_id String, item UInt16, rank UInt16, score Float64, pass_no UInt8) "
       "ENGINE = MergeTree ORDER BY tuple()")
RECOMMENDATIONS = """
SELECT toUUID(r.user_id), {d:Date}, uf.brand_id, {candidates:Array(UUID)}[r.item + 1], r.rank, r.score, {algorithm:String},
       toUUIDOrNull({model_ids:Array(String)}[r.pass_no + 1]), {versions:Array(String)}[r.pass_no + 1], now()
FROM {raw:Identifier} AS r INNER JOIN (SELECT user_id, brand_id FROM customer_user_features WHERE feature_date = {d:Date}) AS uf
  ON uf.user_id = toUUID(r.user_id)
"""
OTHER_BRANDS = "recommendation_date = {d:Date} AND brand_id != {brand:UUID}"

STORED = """
SELECT toString(user_id) AS user_id, toString(article_id) AS article_id, rank, score, recommendation_date, model_version
FROM customer_recommendations
WHERE recommendation_date = (SELECT max(recommendation_date) FROM customer_recommendations WHERE recommendation_date <= {d:Date})
  AND user_id IN {users:Array(UUID)} AND rank <= {k:UInt16}
ORDER BY user_id, rank
"""

# the newest batch from the in-memory dictionary (schema 006); a user it does not hold comes back with no articles
STORED_DICT = """
SELECT u, v.1 AS recommendation_date, v.2 AS article_ids, v.3 AS scores, v.4 AS model_version
FROM (SELECT u, dictGet('dict_user_recommendations', ('recommendation_date', 'article_ids', 'scores', 'model_version'),
                        tuple(toUUID(u))) AS v
      FROM (SELECT arrayJoin({users:Array(String)}) AS u))
"""

REALISED = """
SELECT any(model_version), count(), countIf(read), uniqExact(user_id), uniqExactIf(user_id, read)
FROM (
    SELECT r.user_id AS user_id, r.model_version AS model_version, (r.user_id, r.article_id) IN (
        SELECT user_id, article_id FROM editorial_content_events WHERE event_type = 'article_view'
          AND event_timestamp >= {d:Date} AND event_timestamp < {d:Date} + {h:UInt32}) AS read
    FROM customer_recommendations AS r WHERE r.recommendation_date = {d:Date}
)
"""
READING_KNOWN = "SELECT max(toDate(event_timestamp)) >= {d:Date} + {h:UInt32} FROM editorial_content_events"
STORED_DATES = "SELECT DISTINCT recommendation_date FROM customer_recommendations ORDER BY recommendation_date"
DATES_WITH_HORIZON = """
SELECT DISTINCT feature_date FROM customer_user_features
WHERE feature_date + {h:UInt32} <= (SELECT max(toDate(event_timestamp)) FROM editorial_content_events)
ORDER BY feature_date
"""

# the batches made under an A/B test (holding both arms) whose 7 days of reading have passed
TEST_BATCHES = """
SELECT recommendation_date FROM customer_recommendations
WHERE recommendation_date >= {s:Date} AND recommendation_date + 7 <= (SELECT max(toDate(event_timestamp)) FROM editorial_content_events)
GROUP BY recommendation_date
HAVING countIf(model_version = {a:String}) > 0 AND countIf(model_version = {b:String}) > 0
ORDER BY recommendation_date
"""

# per arm, each user once (their first batch of the dates given): users, those who read a recommended article within 7
# days, and the recommendations and reads of those batches (rows of other versions, e.g. batches before the test, are left out)
ARM_OUTCOMES = f"""
SELECT arm, count(), countIf(hit), sum(recommended), sum(hits)
FROM (
    SELECT user_id, any(arm) AS arm, argMin(hit, d) AS hit, argMin(recommended, d) AS recommended, argMin(hits, d) AS hits
    FROM (
        SELECT arm, user_id, d, max(read) AS hit, count() AS recommended, countIf(read) AS hits
        FROM (
            SELECT {variant_sql('r.user_id')} AS arm, r.user_id AS user_id,
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
        GROUP BY arm, user_id, d
    )
    GROUP BY user_id
)
GROUP BY arm ORDER BY arm
SETTINGS join_use_nulls = 0
"""
