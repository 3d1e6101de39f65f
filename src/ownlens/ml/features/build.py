"""Builds every derived table for a date, in dependency order, and reports what it wrote."""

from __future__ import annotations

from datetime import date, timedelta

from clickhouse_connect.driver.client import Client

from ownlens.ml import schema
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.features import customer, editorial, lead, subscription

STEPS = [
    ("customer_user_features", customer.build_user_features),  # first: the others read it
    ("customer_user_feature_vectors", customer.build_user_feature_vectors),
    ("customer_user_labels", customer.build_labels),
    ("customer_session_summary_daily", customer.build_session_summary),
    ("editorial_article_performance", editorial.build_article_performance),
    ("editorial_author_performance", editorial.build_author_performance),
    ("editorial_category_performance", editorial.build_category_performance),
    ("editorial_article_features", editorial.build_article_features),
    ("customer_subscription_features", subscription.build_subscription_features),
    ("customer_subscription_labels", subscription.build_subscription_labels),
    ("customer_lead_features", lead.build_lead_features),
]


DATA_RANGE = "SELECT toDate(min(session_start)), toDate(max(session_start)), count() FROM customer_sessions"


def data_range(client: Client) -> tuple[date, date] | None:
    """First and last day with sessions, or None for an empty warehouse."""
    first, last, n = client.query(DATA_RANGE).result_rows[0]
    return (first, last) if n else None


def build_features(client: Client, d: date, from_history: bool = False) -> dict[str, int]:
    """Build all feature tables for ``d`` from data strictly before ``d`` (labels from [d, d+30)).

    Re-running for the same date replaces the rows. Raises :class:`NotFound` when there is no
    data before ``d``. ``from_history`` computes the users' state from all sessions instead of an
    earlier stored state (see :func:`customer.build_user_state`).
    """
    schema.require(client)
    span = data_range(client)
    if span is None:
        raise NotFound("the warehouse has no sessions yet: run `ownlens-ml simulate` or load customer_events first")
    first, last = span
    if not (first < d <= last + timedelta(days=1)):
        raise NotFound(
            f"no data before {d} to build features from: sessions cover {first} .. {last}, "
            f"so pick a date from {first + timedelta(days=1)} to {last + timedelta(days=1)}"
        )
    if from_history:
        customer.forget_states(client)
    return {table: step(client, d) for table, step in STEPS}


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise InvalidInput(f"--to ({end}) is before --from ({start})")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
