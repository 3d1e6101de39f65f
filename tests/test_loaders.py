from datetime import date

import pytest
from conftest import FEATURE_DATES

from ownlens.ml.data.loaders import (
    ContentEventLoader,
    EditorialLoader,
    EventLoader,
    ReferenceLoader,
    SessionLoader,
    UserFeaturesLoader,
)
from ownlens.ml.data.quality import check_user_features
from ownlens.ml.errors import InvalidInput, NotFound


def test_seed_000_loader_call_returns_names(sim):
    features = UserFeaturesLoader(sim).load(feature_date=FEATURE_DATES[0], brand_id="DCH", include_references=True, limit=500)
    assert 0 < len(features) <= 500
    assert set(features["brand_name"]) == {"The Daily Chronicle"}
    for column in ["device_type_name", "os_name", "browser_name", "country_name", "city_name", "brand_code"]:
        assert features[column].notna().all(), column
    assert set(features["device_type_name"]) <= {"mobile", "desktop", "tablet"}
    again = UserFeaturesLoader(sim).load(feature_date=FEATURE_DATES[0], brand_id="DCH", limit=500)
    assert list(again["user_id"]) == list(features["user_id"])


def test_brand_by_id_code_or_name_and_latest_date_by_default(sim):
    loader = UserFeaturesLoader(sim)
    by_code = loader.load(brand_id="tpl")
    brand_id = by_code["brand_id"].iloc[0]
    assert len(loader.load(brand_id=brand_id)) == len(by_code) == len(loader.load(brand_id="Tech Pulse"))
    assert set(loader.load(limit=5)["feature_date"].astype(str)) == {str(FEATURE_DATES[-1])}


@pytest.mark.parametrize("call, error, message", [
    (lambda l: l.load(brand_id="nope"), NotFound, "unknown brand 'nope'.*DCH"),
    (lambda l: l.load(feature_date="2026-13-01"), InvalidInput, "not a date"),
    (lambda l: l.load(feature_date="2026-02-03"), NotFound, "no features for 2026-02-03"),
    (lambda l: l.load(limit=0), InvalidInput, "limit must be a positive"),
    (lambda l: l.load(user_ids=["not-a-uuid"]), InvalidInput, "not a valid id"),
])
def test_bad_loader_input_names_the_problem(sim, call, error, message):
    with pytest.raises(error, match=message):
        call(UserFeaturesLoader(sim))


def test_content_join_adds_editorial_features(sim):
    frame = UserFeaturesLoader(sim).load_with_content(feature_date=FEATURE_DATES[0], limit=200)
    assert {"articles_viewed_30d", "avg_article_engagement", "unique_authors_followed", "categories_engaged"} <= set(frame.columns)
    assert (frame["articles_viewed_30d"] > 0).mean() > 0.8
    one = UserFeaturesLoader(sim).load_with_content(user_id=frame["user_id"].iloc[0], feature_date=FEATURE_DATES[0])
    assert len(one) == 1 and one["articles_viewed_30d"].iloc[0] == frame["articles_viewed_30d"].iloc[0]


def test_range_loaders_filter_and_stream_in_bounded_batches(sim):
    events = EventLoader(sim)
    day = date(2026, 1, 20)
    subs = events.load(day, day, event_types=["subscription"])
    assert set(subs["event_type"]) <= {"subscription"}
    total = sim.command("SELECT count() FROM customer_events WHERE toDate(event_timestamp) BETWEEN '2026-01-20' AND '2026-01-21'")
    batches = list(events.iter_batches("2026-01-20", "2026-01-21", batch_rows=2_000))
    assert sum(len(b) for b in batches) == total
    assert max(len(b) for b in batches) <= 2_000 * 2  # blocks may merge a little, never the whole table
    user = subs["user_id"].iloc[0] if len(subs) else events.load(day, day, limit=1)["user_id"].iloc[0]
    assert set(SessionLoader(sim).load(date(2026, 1, 5), date(2026, 3, 20), user_id=user)["user_id"]) == {user}
    assert len(ContentEventLoader(sim).load(day, day, brand_id="SPA", limit=10)) == 10
    with pytest.raises(InvalidInput, match="before start"):
        events.load("2026-02-01", "2026-01-01")


def test_editorial_and_reference_loaders(sim):
    editorial = EditorialLoader(sim)
    perf = editorial.article_performance(FEATURE_DATES[0], brand_id="SPA")
    assert len(perf) > 50 and perf["views_7d"].is_monotonic_decreasing
    assert len(editorial.category_performance(FEATURE_DATES[0])) >= 10
    assert len(editorial.author_performance(FEATURE_DATES[0])) > 10
    assert len(editorial.articles(brand_id="TPL", limit=20)) == 20
    with pytest.raises(NotFound, match="features build"):
        editorial.article_performance("2026-02-03")
    assert set(ReferenceLoader(sim).load("countries")["country_code"]) >= {"GB", "US"}
    with pytest.raises(InvalidInput, match="unknown reference table"):
        ReferenceLoader(sim).load("users; DROP TABLE brands")


def test_quality_report(sim):
    report = check_user_features(sim, FEATURE_DATES[0])
    assert report.ok and report.rows > 500
    assert {c.name for c in report.checks} == {"row_count", "unique_users", "missing_values", "value_ranges", "freshness"}
    assert report.ranges["total_sessions"][0] >= 1
    assert not check_user_features(sim, date(2026, 2, 3)).ok
