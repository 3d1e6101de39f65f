"""Seed 004's customer-success and growth scores: subscriber health (0-100, its band and top drivers), expansion and
lead scoring (with the funnel stage), stored per date and served, on the small simulation."""

import numpy as np
import pytest
from conftest import FEATURE_DATES

from ownlens.ml.models import get
from ownlens.ml.models.scoring import score_of_probability

D = FEATURE_DATES[1]


def rows(client, sql, **params):
    return client.query(sql, parameters=params).result_rows


def test_lead_features_cover_every_free_reader_with_touches_from_before_the_date_only(sim, make_db):
    from conftest import copy_of

    from ownlens.ml.features.lead import build_lead_features

    free, leads = rows(sim, """SELECT (SELECT count() FROM customer_user_features WHERE feature_date = {d:Date} AND is_subscriber = 0),
                                      count() FROM customer_lead_features WHERE feature_date = {d:Date}""", d=D)[0]
    touched, stages = rows(sim, "SELECT countIf(touches_last_30d > 0), groupUniqArray(funnel_stage) FROM customer_lead_features "
                                "WHERE feature_date = {d:Date}", d=D)[0]
    assert leads == free > 0 and touched > 0 and set(stages) <= {"aware", "interested", "registered", "engaged"}
    # each stage follows from the reader's recorded behaviour
    wrong = rows(sim, """SELECT count() FROM customer_lead_features AS lf INNER JOIN customer_user_features AS uf
                         ON uf.user_id = lf.user_id AND uf.feature_date = lf.feature_date WHERE lf.feature_date = {d:Date}
                         AND lf.funnel_stage != multiIf(uf.has_newsletter = 1 AND uf.active_days_last_30d >= 10, 'engaged',
                             uf.has_newsletter = 1, 'registered', uf.active_days_last_30d >= 3, 'interested', 'aware')""", d=D)[0][0]
    assert wrong == 0
    # touches from d on change nothing: the same rows from a warehouse without them
    cut = copy_of(sim, make_db)
    cut.command("ALTER TABLE marketing_touchpoints DELETE WHERE touched_at >= {d:Date} SETTINGS mutations_sync = 1", parameters={"d": D})
    build_lead_features(cut, D)
    fingerprint = ("SELECT groupBitXor(cityHash64(user_id, touches_last_7d, touches_last_30d, channels_touched_30d, "
                   "days_since_last_touch, last_touch_channel, funnel_stage)) FROM customer_lead_features WHERE feature_date = {d:Date}")
    assert rows(cut, fingerprint, d=D) == rows(sim, fingerprint, d=D)


def test_drivers_are_the_inputs_that_raise_each_prediction_most(trained, labelled):
    model = trained["health"].model
    X = model.matrix(trained["health"].test)
    pipeline = model.estimator.model_
    parts = pipeline[:-1].transform(X) * pipeline[-1].coef_.ravel()  # a logistic model's exact contributions
    top = model.drivers(X, 3)
    for row, chosen in zip(parts, top):
        kept = chosen[chosen >= 0]
        assert np.all(row[kept] > 0) and list(kept) == list(np.argsort(-row, kind="stable")[:len(kept)])
        assert len(kept) == 3 or (row <= 0).sum() >= len(row) - len(kept)
    # models that cannot attribute (an MLP) name no drivers rather than wrong ones
    mlp = get("health").train(labelled, algorithm="mlp").model
    assert (mlp.drivers(X[:5], 3) == -1).all()


def test_health_scores_are_stored_daily_with_band_score_and_drivers(trained, labelled):
    spec, result = get("health"), trained["health"]
    batch = spec.predict_batch(labelled, result.model, D)
    stored = rows(labelled, """SELECT toString(user_id), cancel_or_downgrade_probability, health_score, health_band, at_risk, top_drivers
                                FROM customer_health_scores WHERE prediction_date = {d:Date} ORDER BY user_id""", d=D)
    subscribers = rows(labelled, "SELECT count() FROM customer_subscription_features WHERE feature_date = {d:Date}", d=D)[0][0]
    assert batch["rows"] == len(stored) == subscribers > 0
    p = np.array([r[1] for r in stored])
    assert [r[2] for r in stored] == score_of_probability(p).tolist() and all(0 <= r[2] <= 100 for r in stored)
    assert [r[3] for r in stored] == list(spec.level(p)) and [r[4] for r in stored] == (p >= result.model.threshold).astype(int).tolist()
    assert any(r[5] for r in stored) and all(set(r[5]) <= set(spec.features.columns) and len(r[5]) <= 3 for r in stored)
    # served: the same record as stored
    server = spec.server(labelled, result.model)
    records, unknown = server.records([stored[0][0]], D)
    assert not unknown and records[0]["health_score"] == stored[0][2] and records[0]["top_drivers"] == stored[0][5]
    # checked against what then happened: each band's observed rate, per band, in the training result
    bands = result.extra["bands"]
    assert set(bands) == {"healthy", "at_risk", "critical"} and sum(b["rows"] for b in bands.values()) == result.split["test_rows"]


@pytest.mark.parametrize("name, table", [("expansion", "customer_expansion_predictions"), ("lead", "customer_lead_scores")])
def test_expansion_and_lead_scores_are_stored_with_their_context(name, table, trained, labelled):
    spec, result = get(name), trained[name]
    batch = spec.predict_batch(labelled, result.model, D)
    assert batch["rows"] == rows(labelled, "SELECT count() FROM {t:Identifier} WHERE prediction_date = {d:Date}", t=table, d=D)[0][0] > 0
    if name == "lead":  # the funnel stage comes back as the features said it
        mismatched = rows(labelled, """SELECT count() FROM customer_lead_scores AS s INNER JOIN customer_lead_features AS f
                                       ON f.user_id = s.user_id AND f.feature_date = s.prediction_date
                                       WHERE s.prediction_date = {d:Date} AND s.funnel_stage != f.funnel_stage""", d=D)[0][0]
        assert mismatched == 0
        user, stage = rows(labelled, "SELECT toString(user_id), funnel_stage FROM customer_lead_scores WHERE prediction_date = {d:Date} "
                                     "ORDER BY user_id LIMIT 1", d=D)[0]
        records, _ = spec.server(labelled, result.model).records([user], D)
        assert records[0]["funnel_stage"] == stage and 0 <= records[0]["lead_probability"] <= 1


@pytest.mark.parametrize("name, compared", [("health", "plan_tier"), ("lead", "touches_last_7d")])
def test_monitoring_compares_the_stored_inputs_of_models_with_their_own_rows(name, compared, trained, labelled):
    from ownlens.ml.monitoring.monitor import monitor
    from ownlens.ml.registry import store

    spec = get(name)
    store.promote(labelled, name, trained[name].model.version)
    report = monitor(labelled, spec, D, FEATURE_DATES[0])
    drift = {d.name: d for d in report.drift}
    assert set(drift) == set(spec.monitored.columns) and drift[compared].reference_rows > 0 and drift[compared].current_rows > 0
    stored = rows(labelled, "SELECT count() FROM ml_model_monitoring WHERE model_name = {m:String} AND monitoring_date = {d:Date} "
                            "AND monitor_type = 'feature_drift'", m=name, d=D)[0][0]
    assert stored == len(spec.monitored.columns)
