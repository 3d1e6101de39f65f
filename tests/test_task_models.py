"""Segmentation, recommendation and ad placement against a real chDB warehouse, through Python, CLI-free API and REST."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURE_DATES
from fastapi.testclient import TestClient

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models.advertising import placement
from ownlens.ml.models.content import recommendation
from ownlens.ml.models.content.recommendation import batch as recommendation_batch
from ownlens.ml.models.content.recommendation import serving as recommendation_serving
from ownlens.ml.models.content.recommendation import signals
from ownlens.ml.models.content.recommendation.estimator import TOP_K, HybridRecommender, top_k
from ownlens.ml.models.customer import segmentation
from ownlens.ml.models.customer.segmentation import batch as segmentation_batch
from ownlens.ml.models.customer.segmentation import serving as segmentation_serving
from ownlens.ml.models.customer.segmentation import training as segmentation_training
from ownlens.ml.models.runs import train
from ownlens.ml.models.trained import load
from ownlens.ml.monitoring.monitor import monitor
from ownlens.ml.serving.app import create_app
from ownlens.ml.settings import Settings

D0, D1 = FEATURE_DATES
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _count(client, sql, **params) -> int:
    return int(client.command(sql, parameters=params))


def test_segments_separate_true_traits_and_are_stored_idempotently(trained, labelled):
    r = trained["segmentation"]
    assert r.split == {**r.split, "kind": "time", "train_dates": [str(D0)], "test_date": str(D1)}
    m = r.metrics
    assert 2 <= m["n_segments"] <= 8 and m["silhouette"] > 0.05 and m["davies_bouldin"] > 0
    assert m["truth_separation"] > 10 * max(m["truth_separation_random"], 0.001)  # segments carry real latent differences
    names = list(m["segment_shares"])
    assert len(set(names)) == len(names) and abs(sum(m["segment_shares"].values()) - 1) < 1e-9

    model = load(labelled, "segmentation", "production")  # from its JSON artifact, checksum verified
    users = _count(labelled, "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", d=D1)
    for _ in range(2):
        result = segmentation_batch.assign(labelled, model, D1)
    assert result["rows"] == users
    assert _count(labelled, "SELECT count() FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}", d=D1) == users
    assert _count(labelled, "SELECT count() FROM ml_model_predictions WHERE model_name = 'segmentation' AND prediction_date = {d:Date}", d=D1) == users
    profiles = segmentation_serving.profiles(labelled, model.version)
    assert len(profiles) == model.estimator.n_clusters_ and profiles["user_count"].sum() == users
    assert {"avg_sessions_last_30d", "share", "mobile_share"} <= set(profiles["segment_profile"].iloc[0])

    # one brand re-assigned keeps the other brands' rows
    brand = labelled.command("SELECT toString(brand_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1", parameters={"d": D1})
    segmentation_batch.assign(labelled, model, D1, brand_id=brand)
    assert _count(labelled, "SELECT count() FROM customer_user_segment_assignments WHERE assignment_date = {d:Date}", d=D1) == users

    # the artifact's model and the fitted one agree; the live look-up matches the stored assignment
    frame = segmentation_training.inputs(labelled, D1)
    assert (model.estimator.predict(frame[model.features]) == r.model.estimator.predict(frame[model.features])).all()
    found, unknown = segmentation_serving.segments(labelled, model, [frame["user_id"].iloc[0], UNKNOWN], D1)
    one = pd.DataFrame(found)
    assert list(one["user_id"]) == [frame["user_id"].iloc[0]] and unknown == [UNKNOWN]
    stored = labelled.command("SELECT toString(segment_id) FROM customer_user_segment_assignments WHERE assignment_date = {d:Date} "
                              "AND user_id = {u:UUID}", parameters={"d": D1, "u": frame["user_id"].iloc[0]})
    assert one["segment_id"].iloc[0] == stored


def test_segmentation_estimator_behaves_like_scikit_learn():
    from sklearn.base import clone

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (200, 4)), rng.normal(6, 1, (200, 4))])
    X[::17, 2] = np.nan
    est = segmentation.KMeansSegmenter(min_clusters=2, random_state=1).fit(pd.DataFrame(X, columns=["sessions_last_30d", "a", "b", "c"]))
    assert est.n_clusters_ == 2 and set(est.silhouette_by_k_) >= {"2", "3"}  # two blobs: silhouette picks two
    X = pd.DataFrame(X, columns=["sessions_last_30d", "a", "b", "c"])
    labels = est.predict(X)
    assert len(np.unique(labels[:200])) == 1 and labels[0] != labels[-1]
    assert est.transform(X).shape == (400, est.n_clusters_) and ((0 <= est.confidence(X)) & (est.confidence(X) <= 1)).all()
    again = segmentation.KMeansSegmenter.from_files(est.to_files())
    assert (again.predict(X) == labels).all()
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(ValueError):
        est.predict(X.iloc[:, :3])


def test_recommendations_beat_popularity_trail_the_oracle_and_respect_time(trained, labelled):
    r = trained["recommendation"]
    m, oracle = r.metrics, r.oracle_metrics
    assert r.split["test_date"] == str(D1) and r.split["train_dates"] == [str(D0)] and m["users"] > 100
    assert m["precision_at_k"] > m["signals_alone"]["popularity"]["precision_at_k"]
    assert m["precision_at_k"] >= m["signals_alone"]["content"]["precision_at_k"] * 0.9
    assert oracle["precision_at_k"] > m["signals_alone"]["popularity"]["precision_at_k"]
    assert 0 < m["recall_at_k"] <= 1 and 0 < m["catalog_coverage"] <= 1

    model = load(labelled, "recommendation", "production")
    users = _count(labelled, "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", d=D1)
    for _ in range(2):
        result = recommendation_batch.recommend_batch(labelled, model, D1)
    assert result["users"] == users
    stored = _count(labelled, "SELECT count() FROM customer_recommendations WHERE recommendation_date = {d:Date}", d=D1)
    assert stored == result["rows"] and users * 5 < stored <= users * TOP_K
    # only articles published before D, never one the user read in the week before D, ranks 1..k without gaps
    assert _count(labelled, """
SELECT count() FROM customer_recommendations AS r INNER JOIN editorial_articles AS a ON a.article_id = r.article_id
WHERE r.recommendation_date = {d:Date} AND a.publish_timestamp >= {d:Date}""", d=D1) == 0
    assert _count(labelled, """
SELECT count() FROM customer_recommendations AS r
INNER JOIN (SELECT DISTINCT user_id, article_id FROM editorial_content_events WHERE event_type = 'article_view'
            AND event_timestamp >= {d:Date} - 7 AND event_timestamp < {d:Date}) AS seen
  ON seen.user_id = r.user_id AND seen.article_id = r.article_id
WHERE r.recommendation_date = {d:Date}""", d=D1) == 0
    assert _count(labelled, "SELECT countIf(max_rank != n) FROM (SELECT user_id, max(rank) AS max_rank, count() AS n "
                            "FROM customer_recommendations WHERE recommendation_date = {d:Date} GROUP BY user_id)", d=D1) == 0

    user = labelled.command("SELECT toString(user_id) FROM customer_recommendations WHERE recommendation_date = {d:Date} AND rank = 1 "
                            "ORDER BY score DESC LIMIT 1", parameters={"d": D1})
    live = {r["user_id"]: r for r in recommendation_serving.live(labelled, model, [user, UNKNOWN], D1)}
    batch = recommendation_serving.stored(labelled, [user], D1)[user]
    assert [a["article_id"] for a in live[user]["recommendations"]] == [a["article_id"] for a in batch["recommendations"]]  # live and batch agree
    cold = live[UNKNOWN]
    assert len(cold["recommendations"]) == TOP_K and cold["cold_start"]
    upper = recommendation.RecommendationPredictor(model, labelled).predict(user.upper(), feature_date=D1)  # ids in any case
    assert list(upper["article_id"]) == [a["article_id"] for a in batch["recommendations"]]


def test_ad_placement_captures_the_oracle_uplift(trained, labelled):
    r = trained["ad_placement"]
    m = r.metrics
    assert m["best_placement"] == "in_article" and m["ctr_mean_abs_error"] < 0.01
    assert m["current_allocation_revenue_per_1000"] < m["revenue_per_1000"] <= r.oracle_metrics["revenue_per_1000"] + 1e-9
    assert m["uplift_captured"] > 0.8

    model = load(labelled, "ad_placement", "production")
    result = placement.predict_batch(labelled, model, D1)
    assert result["rows"] == _count(labelled, "SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", d=D1)
    placement.predict_batch(labelled, model, D1)
    assert _count(labelled, "SELECT count() FROM ml_model_predictions WHERE model_name = 'ad_placement' AND prediction_date = {d:Date}",
                  d=D1) == result["rows"]
    # Thompson sampling explores: sampled decisions vary, the exploiting one does not
    user = labelled.command("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1", parameters={"d": D1})
    sampled = {tuple(placement.decide_users(labelled, model, [user], D1, explore=True, seed=s)[0][0]["alternatives"].values())
               for s in range(5)}
    fixed = {tuple(placement.decide_users(labelled, model, [user], D1, explore=False)[0][0]["alternatives"].values()) for _ in range(3)}
    assert len(sampled) == 5 and len(fixed) == 1
    unknown = placement.decide_users(labelled, model, [UNKNOWN], D1, device="mobile")[0][0]
    assert not unknown["known_user"] and unknown["device"] == "mobile"


def test_realised_performance_of_stored_outputs_is_monitored(trained, labelled):
    for name, task in (("recommendation", recommendation.RECOMMENDATION), ("ad_placement", placement.AD_PLACEMENT)):
        task.predict_batch(labelled, load(labelled, name, "production"), D0)
        report = monitor(labelled, task, D0)
        assert report.version == trained[name].model.version and report.current == D0
        monitor(labelled, task, D0)  # again: replaces its rows
        rows = labelled.query("SELECT metric_name, feature_name, metric_value FROM ml_model_monitoring "
                              "WHERE model_name = {m:String} AND monitoring_date = {d:Date}", parameters={"m": name, "d": D0}).result_rows
        assert len(rows) == len(report.performance)
    hits = labelled.command("""
SELECT countIf((r.user_id, r.article_id) IN (SELECT user_id, article_id FROM editorial_content_events
               WHERE event_type = 'article_view' AND event_timestamp >= {d:Date} AND event_timestamp < {d:Date} + 7)) / count()
FROM customer_recommendations AS r WHERE r.recommendation_date = {d:Date}""", parameters={"d": D0})
    found = monitor(labelled, recommendation.RECOMMENDATION, D0).performance
    assert found["realised_precision_at_k"] == pytest.approx(float(hits)) and 0 < found["realised_hit_rate_at_k"] < 1
    seg = load(labelled, "segmentation", "production")
    for d in (D0, D1):
        segmentation_batch.assign(labelled, seg, d)
    moved = monitor(labelled, segmentation.SEGMENTATION, D1)
    assert moved.reference == D0 and moved.prediction_drift.psi >= 0 and moved.prediction_drift.status in ("ok", "warning", "alert")
    assert sum(moved.performance.values()) == pytest.approx(1.0)  # the segment shares of D1
    ads = {(m, f): v for m, f, v in labelled.query("SELECT metric_name, feature_name, metric_value FROM ml_model_monitoring "
                                                    "WHERE model_name = 'ad_placement' AND monitoring_date = {d:Date}",
                                                    parameters={"d": D0}).result_rows}
    assert abs(ads[("realised_ctr", "in_article")] - ads[("expected_ctr", "in_article")]) < 0.01


def test_task_models_through_the_api(trained, labelled):
    user = labelled.command("SELECT toString(user_id) FROM customer_recommendations WHERE recommendation_date = {d:Date} LIMIT 1",
                            parameters={"d": D1}) or labelled.command("SELECT toString(user_id) FROM customer_user_features LIMIT 1")
    recommendation_batch.recommend_batch(labelled, load(labelled, "recommendation", "production"), D1)
    with TestClient(create_app(Settings(api_keys=None), labelled)) as http:
        got = http.get(f"/recommendations/{user}", params={"k": 3})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["source"] == "batch" and [r["rank"] for r in body["recommendations"]] == [1, 2, 3]
        assert http.get(f"/recommendations/{user}", params={"k": 3}).json() == body  # cached answer alike
        more = http.get(f"/recommendations/{user}", params={"k": 25}).json()  # more than the batch keeps: computed now
        assert more["source"] == "live" and len(more["recommendations"]) == 25
        cold = http.get(f"/recommendations/{UNKNOWN}").json()
        assert cold["source"] == "live" and cold["cold_start"] and len(cold["recommendations"]) == 10
        for path, status in ((f"/recommendations/{user}?k=0", 422), ("/recommendations/not-an-id", 422),
                             (f"/segments/{UNKNOWN}", 404), (f"/ads/placement/{user}?device=toaster", 404),
                             (f"/segments/{user}?feature_date=2026-13-01", 422)):
            response = http.get(path)
            assert response.status_code == status and "detail" in response.json(), (path, response.text)
        seg = http.get(f"/segments/{user}").json()
        assert seg["segment_name"] in trained["segmentation"].model.estimator.segment_names_ and 0 <= seg["confidence"] <= 1
        ad = http.get(f"/ads/placement/{user}", params={"explore": "false"}).json()
        assert ad["placement"] == max(ad["alternatives"], key=ad["alternatives"].get) and not ad["explored"] and ad["known_user"]
        paths = http.get("/openapi.json").json()["paths"]
        assert {"/recommendations/{user_id}", "/segments/{user_id}", "/ads/placement/{user_id}"} <= set(paths)
        metrics = http.get("/metrics").text
        assert 'ownlens_predictions_total{model="recommendation"' in metrics


def test_task_models_explain_what_is_missing(make_db, labelled):
    empty = make_db()
    for task in (segmentation.SEGMENTATION, recommendation.RECOMMENDATION, placement.AD_PLACEMENT):
        with pytest.raises(NotFound, match="features"):
            task.train(empty)
    with pytest.raises(InvalidInput, match="at least 2"):
        train(segmentation.SEGMENTATION, labelled, n_clusters=1, register=False)
    with pytest.raises(InvalidInput, match="does not take algorithm"):
        train(segmentation.SEGMENTATION, labelled, algorithm="xgboost", register=False)
    runs = labelled.query("SELECT status, count() FROM ml_model_training_runs FINAL WHERE model_name = 'segmentation' GROUP BY status").result_rows
    assert dict(runs).get("failed", 0) >= 1  # the refused run is on record



def test_seed_style_api_for_task_models(trained, labelled, tmp_path):
    from ownlens.ml.models.advertising.placement import AdPlacementPredictor
    from ownlens.ml.models.content.recommendation import RecommendationPredictor
    from ownlens.ml.models.customer.churn import ChurnModel
    from ownlens.ml.models.customer.segmentation import SegmentationModel, SegmentationPredictor, SegmentationTrainingPipeline

    metrics = SegmentationTrainingPipeline(labelled, register=False).run(limit=2_000, n_clusters=3)
    assert metrics["n_segments"] == 3 and metrics["model_version"] is None and metrics["split"]["test_date"] == str(D1)
    path = tmp_path / "segmentation.zip"
    trained["segmentation"].model.save(str(path))
    model = SegmentationModel().load(path)
    with pytest.raises(InvalidInput, match="holds a segmentation model"):
        ChurnModel().load(path)
    user = labelled.command("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1", parameters={"d": D1})
    segment = SegmentationPredictor(model, labelled).predict(user, feature_date=D1)
    assert segment["segment_name"].iloc[0] in model.trained.estimator.segment_names_
    recs = RecommendationPredictor(client=labelled).predict(user, feature_date=D1, k=5)
    assert list(recs["rank"]) == [1, 2, 3, 4, 5] and recs["score"].is_monotonic_decreasing
    ad = AdPlacementPredictor(client=labelled).predict([user, UNKNOWN], feature_date=D1)
    assert list(ad["placement"]) == ["in_article", "in_article"] and list(ad["known_user"]) == [True, False]


def test_ab_test_of_two_recommenders(trained, labelled):
    from ownlens.ml.monitoring import abtest
    from ownlens.ml.serving.served import ServedModels

    first = trained["recommendation"].model.version  # learnt from the week after D0
    second = train(recommendation.RECOMMENDATION, labelled, feature_date=D0, test_date=D0).model.version
    test = abtest.create(labelled, "recs-ab", "recommendation", first, second, split=0.5, start=D0)
    try:
        # a batch on D0 (both versions learnt from its week: never read out) and one on D1
        for d in (D0, D1):
            result = recommendation_batch.recommend_batch(labelled, load(labelled, "recommendation", first), d, ab_test=test)
        assert result["version"] == f"{first} | {second}"
        wrong = labelled.command(f"""
SELECT countIf(model_version != if({abtest.VARIANT_SQL} = 'B', {{b:String}}, {{a:String}})), uniqExact(model_version)
FROM customer_recommendations WHERE recommendation_date = {{d:Date}}""",
                                 parameters={"test": test.test_id, "split": 0.5, "a": first, "b": second, "d": D1})
        assert wrong == ["0", "2"]  # every user got their arm's version, and both arms are there
        served = ServedModels(labelled)
        for user in labelled.query("SELECT DISTINCT toString(user_id) FROM customer_recommendations WHERE recommendation_date = {d:Date} "
                                   "LIMIT 20", parameters={"d": D0}).result_rows:
            expected = second if abtest.variant(test.test_id, user[0], 0.5) == "B" else first
            assert served.server("recommendation", user[0]).model.version == expected
        results = abtest.analyse(labelled, "recs-ab")
        assert results["dates"] == [str(D1)] and {a["version"] for a in results["arms"].values()} == {first, second}
        assert list(results["excluded_dates"]) == [str(D0)]
        users = int(labelled.command("SELECT uniqExact(user_id) FROM customer_recommendations WHERE recommendation_date = {d:Date}",
                                     parameters={"d": D1}))
        assert sum(a["users"] for a in results["arms"].values()) == users  # only the test's batch, every user once
        for arm in results["arms"].values():
            assert 0 < arm["hit_rate"] < 1 and arm["users"] > 100
        assert 0 <= results["test"]["p_value"] <= 1
    finally:
        concluded = abtest.conclude(labelled, "recs-ab")
    assert concluded.status == "concluded" and concluded.winner in ("A", "B", "none")
    with pytest.raises(InvalidInput):
        abtest.create(labelled, "segments-ab", "segmentation", first, second)


@pytest.mark.parametrize("collaborative", ["item_knn", "nmf"])
def test_co_reading_recommends_what_similar_readers_read(collaborative):
    from datetime import date

    from scipy import sparse

    rng = np.random.default_rng(3)
    # two reader groups: one reads items 0-4, the other 5-9, each reader some of their group's items
    rows = [(u, i) for u in range(400) for i in (rng.choice(5, 3, replace=False) + (0 if u < 200 else 5))]
    reads = sparse.csr_matrix((np.ones(len(rows)), tuple(zip(*rows))), shape=(400, 10))
    ctx = signals.DateContext(date(2026, 1, 1), pd.DataFrame({"article_id": np.arange(10)}), [], [], [], np.zeros((10, 1)),
                              np.zeros(10), np.zeros(10), np.zeros(10, dtype=np.int64))
    est = HybridRecommender(collaborative=collaborative, n_components=2)
    signals.fit_co_reading(ctx, reads, est)
    known = sparse.csr_matrix(([1.0, 1.0], ([0, 1], [0, 7])), shape=(2, 10))  # a reader of item 0, one of item 7
    batch = signals.UserBatch(np.array(["a", "b"]), sparse.csr_matrix((2, 1)), known)
    top, _ = top_k(signals.signals(ctx, batch, slice(None), est)["collaborative"], known, 4)
    assert set(top[0]) == {1, 2, 3, 4} and set(top[1]) == {5, 6, 8, 9}
