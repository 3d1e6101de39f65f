"""The editorial models on a publisher large enough for articles and topics to have readers every hour: article
performance beats extrapolating early views, trending finds the injected topic bursts with few false alarms, no
prediction uses anything after its time, and bad input gets clear answers."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ownlens.ml.data.loaders import reload_reference_dictionaries
from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get
from ownlens.ml.models.editorial import articles, trends
from ownlens.ml.models.runs import train
from ownlens.ml.registry import store
from ownlens.ml.serving.app import create_app
from ownlens.ml.settings import Settings
from ownlens.ml.simulation import SimulationConfig, simulate

EDITORIAL = SimulationConfig(users=20_000, days=42, start=date(2026, 1, 5), seed=5)
D = date(2026, 2, 10)  # a date in the last week: articles and hours before it are predicted


@pytest.fixture(scope="module")
def editorial(make_db):
    client = make_db()
    simulate(client, EDITORIAL)
    reload_reference_dictionaries(client)
    results = {}
    for name in ("article_performance", "trending"):
        results[name] = train(get(name), client)
        store.promote(client, name, results[name].model.version)
    return client, results


def test_article_performance_beats_extrapolating_early_views(editorial):
    _, results = editorial
    m = results["article_performance"].metrics
    oracle = results["article_performance"].oracle_metrics
    assert m["test_articles" if "test_articles" in m else "articles"] > 100
    for h in (0, 1, 3, 6):  # at publication and after 1, 3 and 6 hours, on articles published after training
        assert m[f"spearman_{h}h"] > m[f"baseline_spearman_{h}h"] + 0.03, h
        assert m[f"spearman_{h}h"] <= oracle[f"spearman_{h}h"] + 0.05, h
    assert m["spearman_6h"] > m["spearman_1h"] > m["spearman_0h"] > 0.2  # more traction, better predictions
    assert m["top_decile_precision_1h"] > m["baseline_top_decile_precision_1h"]
    test = results["article_performance"].test.frame  # judged only on articles published from the test date on
    assert pd.to_datetime(test["publish_timestamp"]).dt.date.min() >= date.fromisoformat(results["article_performance"].split["test_date"])


def test_trending_finds_the_injected_bursts_with_few_false_alarms(editorial):
    _, results = editorial
    m, oracle = results["trending"].metrics, results["trending"].oracle_metrics
    assert m["bursts"] >= 4 and oracle["burst_recall"] >= 0.75
    # (a brand has about 30 topics: some 5,000 topic-hours a week, a few of them flagged wrongly)
    assert m["burst_recall"] >= 0.5 and m["burst_precision"] >= 0.25, m
    assert m["false_alarms_per_brand_week"] <= 8 and m["detection_delay_h"] < 24, m


def test_trending_is_stored_per_brand_and_hour_with_its_reasons(editorial):
    client, results = editorial
    model = results["trending"].model
    summary = get("trending").predict_batch(client, model, D)
    again = get("trending").predict_batch(client, model, D)
    rows = client.query("SELECT count(), uniqExact(brand_id, hour, level, rank), uniqExact(hour), countIf(reason = ''), "
                        "max(rank) FROM editorial_trending WHERE toDate(hour) = {d:Date} - 1", parameters={"d": D}).result_rows[0]
    assert summary["rows"] == again["rows"] == rows[0] == rows[1] > 0  # replaced, not duplicated
    assert rows[2] == 24 and rows[3] == 0 and rows[4] == trends.TOP_K
    bursts = client.query("SELECT level, reason FROM editorial_trending WHERE toDate(hour) = {d:Date} - 1 AND is_burst = 1",
                          parameters={"d": D}).result_rows
    assert all(level != "article" and reason.startswith("burst: ") for level, reason in bursts)


def _served(client, results, d):
    article_ids = client.query("SELECT toString(article_id) FROM editorial_articles WHERE publish_timestamp < {d:Date} "
                               "AND publish_timestamp >= {d:Date} - 2 ORDER BY article_id", parameters={"d": d}).result_rows
    performance = articles.server(client, results["article_performance"].model).frame([a for (a,) in article_ids], d)
    brands = [b for (b,) in client.query("SELECT DISTINCT toString(brand_id) FROM brands ORDER BY 1").result_rows]
    trending, _ = trends.server(client, results["trending"].model).records(brands, d, hours=48, k=20)
    return performance, trending


def test_a_prediction_uses_nothing_after_its_time(editorial, make_db):
    from conftest import copy_of

    client, results = editorial
    before_perf, before_trend = _served(client, results, D)
    assert len(before_perf) > 50 and set(before_perf["hours_observed"]) >= {0, 6}
    cut = copy_of(client, make_db)  # the same warehouse with everything from D on deleted
    for table, column in (("editorial_content_events", "event_timestamp"), ("editorial_articles", "publish_timestamp"),
                          ("customer_events", "event_timestamp"), ("customer_sessions", "session_start")):
        cut.command(f"DELETE FROM {table} WHERE {column} >= {{d:Date}}", parameters={"d": D})
    assert cut.command("SELECT count() FROM editorial_content_events WHERE event_timestamp >= {d:Date}", parameters={"d": D}) == 0
    after_perf, after_trend = _served(cut, results, D)
    pd.testing.assert_frame_equal(before_perf.reset_index(drop=True), after_perf.reset_index(drop=True))
    assert before_trend == after_trend


def test_an_article_without_views_yet_is_predicted_from_its_metadata(editorial):
    client, results = editorial
    # published in the hour before D: its first hour has not closed, so only metadata is known
    young = client.query("SELECT toString(article_id) FROM editorial_articles WHERE publish_timestamp >= {t:DateTime} "
                         "AND publish_timestamp < {d:Date} LIMIT 1",
                         parameters={"t": datetime(D.year, D.month, D.day, tzinfo=timezone.utc) - timedelta(minutes=50), "d": D}).result_rows
    assert young
    [record], unknown = articles.server(client, results["article_performance"].model).records([young[0][0]], D)
    assert unknown == [] and record["hours_observed"] == 0 and record["predicted_views_7d"] > 0


def test_bad_editorial_input_gets_clear_answers(editorial):
    client, results = editorial
    with TestClient(create_app(Settings(api_keys=None), client)) as http:
        unknown_article = http.get("/predict/article_performance/00000000-0000-4000-8000-000000000000", params={"feature_date": str(D)})
        assert unknown_article.status_code == 404 and "unknown article" in unknown_article.json()["detail"]
        assert http.get("/predict/article_performance/not-a-uuid").status_code == 422
        unknown_brand = http.get("/trending", params={"brand": "no-such-brand"})
        assert unknown_brand.status_code == 404 and "known brands" in unknown_brand.json()["detail"]
        assert http.get("/trending", params={"hours": 0}).status_code == 422
        empty = http.get("/trending", params={"at": "2025-06-01"})
        assert empty.status_code == 404 and "no article views" in empty.json()["detail"]
        body = http.get("/trending", params={"at": str(D), "hours": 24, "k": 3}).json()
        assert len(body["predictions"]) == 3 and all(len(r["topics"]) <= 3 and r["hour"] < f"{D}T00" for r in body["predictions"])
        got = get("trending").record.model_validate(body["predictions"][0])
        assert got.as_of.startswith(str(D)) and got.topics[0].rank == 1
    with pytest.raises(NotFound, match="pick a test date"):
        get("trending").train(client, test_date="2026-01-08")
    with pytest.raises(NotFound, match="no article views on 2025-05-31"):
        get("trending").predict_batch(client, results["trending"].model, "2025-06-01")
    with pytest.raises(InvalidInput):
        get("article_performance").train(client, test_date="not a date")


def test_realised_performance_is_measured_once_the_seven_days_have_passed(editorial):
    client, results = editorial
    model, version = get("article_performance"), results["article_performance"].model
    known, recent = D - timedelta(days=7), EDITORIAL.end
    for d in (known, recent):
        model.predict_batch(client, version, d)
    found = model.realised(client, known)
    assert found["rows"] > 100 and found["spearman"] > 0.3 and found["mae_log_views"] < 1.5
    assert model.realised(client, recent) is None  # its articles' seven days have not passed


def test_shares_and_referrers_are_recorded_and_follow_appeal(editorial):
    client, _ = editorial
    (_, share_low, social_low), (_, share_high, social_high) = client.query("""
        SELECT s.quality > (SELECT quantile(0.75)(quality) FROM sim_articles) AS appealing,
               countIf(e.event_type = 'share') / countIf(e.event_type = 'article_view'),
               countIf(e.event_type = 'article_view' AND e.referrer = 'social')
                 / countIf(e.event_type = 'article_view' AND e.referrer != 'internal')
        FROM editorial_content_events AS e INNER JOIN sim_articles AS s ON s.article_id = e.article_id
        GROUP BY appealing ORDER BY appealing""").result_rows
    assert 0.002 < share_low < share_high < 0.06 and 0.05 < social_low < social_high < 0.6
    # and they are early-traction features, known once their window has closed
    as_of = datetime(D.year, D.month, D.day, tzinfo=timezone.utc)
    frame = articles.rows(client, as_of - timedelta(days=3), as_of - timedelta(hours=6), as_of)
    assert frame["shares_6h"].notna().all() and frame["from_social_6h"].between(0, 1).any()
    assert {f"{k}_{h}h" for k in ("shares", "from_social", "from_search", "from_internal") for h in (1, 3, 6)} <= set(articles.FEATURES)


def test_monitoring_measures_both_editorial_models_against_what_happened(editorial):
    from ownlens.ml.monitoring.monitor import monitor

    client, results = editorial
    d = D - timedelta(days=7)
    for name in ("article_performance", "trending"):
        get(name).predict_batch(client, results[name].model, d)
    performance = monitor(client, get("article_performance"), d).performance
    assert performance["rows"] > 100 and performance["spearman"] > 0.3
    trending = monitor(client, get("trending"), d).performance  # against the simulator's bursts of the day before d
    assert trending["flagged_hours"] >= 0 and "bursts" in trending
    stored = client.command("SELECT count() FROM ml_model_monitoring WHERE model_name = 'trending' AND monitoring_date = {d:Date}",
                            parameters={"d": d})
    assert stored > 0


def test_the_seed_style_predictors_answer_like_the_api(editorial):
    from ownlens.ml.models.editorial.article_performance import ArticlePerformancePredictor
    from ownlens.ml.models.editorial.trending import TrendingPredictor

    client, results = editorial
    brand = client.command("SELECT toString(brand_id) FROM brands ORDER BY brand_id LIMIT 1")
    trending = TrendingPredictor(client=client).predict(brand, feature_date=D, hours=12, k=5)
    assert len(trending) == 1 and trending["brand_id"].iloc[0] == brand and len(trending["topics"].iloc[0]) <= 5
    article = client.command("SELECT toString(article_id) FROM editorial_articles WHERE publish_timestamp < {d:Date} - 1 "
                             "ORDER BY article_id LIMIT 1", parameters={"d": D})
    [row] = ArticlePerformancePredictor(client=client).predict(article, feature_date=D).to_dict("records")
    assert row["hours_observed"] == 6 and row["predicted_views_7d"] > 0
