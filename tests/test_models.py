"""Training, the seed API, the registry, artifacts and predictions against a real chDB warehouse."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from conftest import FEATURE_DATES
from sklearn.utils.estimator_checks import parametrize_with_checks

from ownlens.ml.errors import CorruptArtifact, InvalidInput, NotFound
from ownlens.ml.models import get
from ownlens.ml.models.customer.churn import CHURN, ChurnModel, ChurnPredictor, ChurnTrainingPipeline
from ownlens.ml.models.estimators import OwnLensClassifier, OwnLensRegressor
from ownlens.ml.models.runs import train
from ownlens.ml.models.scoring import predict_batch
from ownlens.ml.models.trained import TrainedModel, load, register
from ownlens.ml.models.training import fit_model
from ownlens.ml.registry import store

CALIBRATED = "calibration deliberately undoes class weights, so extreme weights do not flip predictions"


@parametrize_with_checks(
    [OwnLensClassifier(n_estimators=10), OwnLensClassifier("logistic"), OwnLensRegressor(n_estimators=30, learning_rate=0.3)],
    expected_failed_checks=lambda est: {"check_class_weight_classifiers": CALIBRATED} if isinstance(est, OwnLensClassifier) else {},
)
def test_estimators_pass_sklearn_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def churn_result(trained):
    return trained["churn"]


def test_time_split_beats_trivial_and_reports_oracle(churn_result):
    r = churn_result
    assert r.split["kind"] == "time" and r.split["train_dates"] == [str(FEATURE_DATES[0])] and r.split["test_date"] == str(FEATURE_DATES[1])
    assert r.split["test_rows"] > 500
    assert 0.75 < r.metrics["roc_auc"] <= r.oracle_metrics["roc_auc"] + 0.02
    trivial_brier = r.metrics["positive_rate"] * (1 - r.metrics["positive_rate"])  # always predicting the base rate
    assert r.metrics["brier"] < trivial_brier
    assert set(r.metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"}
def test_decision_thresholds_meet_their_objective_on_the_rows_they_are_chosen_on():
    from ownlens.ml.models.metrics import choose_threshold

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.4, 5000)  # no probability reaches 0.5, as the conversion model's do not
    y = (rng.uniform(size=p.size) < p).astype(int)
    threshold, how = choose_threshold(y, p, "f1")
    assert 0 < threshold < 0.4 and how["validation_rows"] == 5000
    threshold, how = choose_threshold(y, p, "precision>=0.35")
    said = p >= threshold
    assert (y[said].mean() >= 0.35) and how["validation_precision"] >= 0.35
    assert "note" in choose_threshold(y, p, "precision>=0.99")[1]  # unreachable: the best F1, and it says so
    assert choose_threshold(np.zeros(10), p[:10], "f1") == (0.5, {"objective": "f1", "validation_rows": 10,
                                                                  "note": "the validation rows hold one class: the default 0.5"})
    with pytest.raises(ValueError, match="unknown decision objective"):
        choose_threshold(y, p, "accuracy")


def test_seed_api_round_trip(labelled, tmp_path):
    pipeline = ChurnTrainingPipeline(labelled)
    metrics = pipeline.run(feature_date=FEATURE_DATES[1], brand_id="DCH", limit=2000, test_size=0.25)
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"):
        assert 0 <= metrics[key] <= (1 if key != "log_loss" else 10), key
    assert metrics["oracle"]["roc_auc"] > 0.8 and metrics["model_version"]
    row = store.get(labelled, "churn", metrics["model_version"])
    model = ChurnModel().load(row["artifact_uri"], row["artifact_sha256"])
    assert model.version == metrics["model_version"] and model.features == pipeline.model.features

    users = labelled.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 3",
                           parameters={"d": FEATURE_DATES[1]}).result_rows
    predictor = ChurnPredictor(model, labelled)
    one = predictor.predict(users[0][0], return_proba=True)
    assert list(one["user_id"]) == [users[0][0]] and 0 <= one["churn_probability"].iloc[0] <= 1
    assert one["churn_risk_level"].iloc[0] in {"low", "medium", "high"}
    several = predictor.predict([u for (u,) in users] + ["00000000-0000-4000-8000-000000000000"], feature_date=FEATURE_DATES[1])
    assert len(several) == 3 and several.attrs["unknown_users"] == ["00000000-0000-4000-8000-000000000000"]
    assert "no features" in several.attrs["message"]
    with pytest.raises(InvalidInput, match="not a valid id"):
        predictor.predict("not-a-uuid")

    # a plain DataFrame that never saw the warehouse trains the same model code
    frame = pipeline.result.test.drop(columns=["prediction"])
    plain = fit_model(CHURN, frame, params={"n_estimators": 50})
    assert plain.predict_values(frame).shape == (len(frame),)


def test_registry_versions_promote_and_rollback(labelled):
    first = train(get("engagement"), labelled)
    second = train(get("engagement"), labelled)
    major, minor, _ = map(int, first.model.version.split("."))
    assert second.model.version == f"{major}.{minor + 1}.0"
    store.promote(labelled, "engagement", first.model.version)
    store.promote(labelled, "engagement", second.model.version)
    stages = store.versions(labelled, "engagement").set_index("model_version")["stage"]
    assert stages[first.model.version] == "archived" and stages[second.model.version] == "production"
    back = store.rollback(labelled, "engagement")
    assert back["model_version"] == first.model.version
    stages = store.versions(labelled, "engagement").set_index("model_version")["stage"]
    assert stages[first.model.version] == "production" and stages[second.model.version] == "archived"
    assert load(labelled, "engagement").version == first.model.version
    with pytest.raises(NotFound, match="has no version '9.9.9'"):
        store.get(labelled, "engagement", "9.9.9")
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        get("nope")
    importances = labelled.query("SELECT count(), sum(importance) FROM ml_model_features WHERE model_name = 'engagement' "
                                 "AND model_version = {v:String}", parameters={"v": first.model.version}).result_rows[0]
    assert importances[0] == len(first.model.features) and importances[1] == pytest.approx(1.0, abs=1e-6)


def test_tampered_artifact_and_pickles_are_refused(churn_result, labelled, tmp_path):
    row = store.get(labelled, "churn", churn_result.model.version)
    data = open(row["artifact_uri"], "rb").read()
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(data[:-10] + bytes(10))
    with pytest.raises(CorruptArtifact, match="modified since it was registered"):
        TrainedModel.load(str(tampered), row["artifact_sha256"])
    with pytest.raises(InvalidInput, match="not an OwnLens model artifact"):
        TrainedModel.load(str(tampered))
    # a consistent manifest around a booster its library refuses, and a damaged member: the project's error, naming the file
    from ownlens.ml.registry.artifacts import read_artifact, write_artifact

    files = read_artifact(row["artifact_uri"], row["artifact_sha256"])
    broken = tmp_path / "broken.zip"
    write_artifact(str(broken), {**files, "model.ubj": b"{not a booster"})
    with pytest.raises(CorruptArtifact, match=f"{broken} is corrupt: its churn estimator does not load"):
        TrainedModel.load(str(broken))
    damaged = bytearray(data)
    start = data.index(b"model.ubj", 40) + 60  # inside the booster's compressed bytes, past its local header
    damaged[start:start + 20] = bytes(20)
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(CorruptArtifact, match="is corrupt"):
        TrainedModel.load(str(tmp_path / "damaged.zip"))
    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps({"os": "system"}))
    with pytest.raises(InvalidInput, match="pickles are never loaded"):
        ChurnModel().load(str(evil))


def test_batch_predictions_replace_never_duplicate(churn_result, labelled):
    d = FEATURE_DATES[1]
    first = predict_batch(CHURN, labelled, churn_result.model, d, batch_rows=500)
    again = predict_batch(CHURN, labelled, churn_result.model, d, batch_rows=700)
    users = int(labelled.command("SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": d}))
    assert first["rows"] == again["rows"] == users
    count = lambda sql: labelled.query(sql, parameters={"d": d}).result_rows[0]
    assert count("SELECT count(), uniqExact(user_id) FROM customer_churn_predictions WHERE prediction_date = {d:Date}") == (users, users)
    assert count("SELECT count(), uniqExact(entity_id) FROM ml_model_predictions WHERE model_name = 'churn' "
                 "AND prediction_date = {d:Date}") == (users, users)
    # re-scoring one brand keeps the other brands' rows
    one = predict_batch(CHURN, labelled, churn_result.model, d, brand_id="TPL")
    assert 0 < one["rows"] < users
    assert count("SELECT count() FROM customer_churn_predictions WHERE prediction_date = {d:Date}") == (users,)
    stored = labelled.query("SELECT avg(churn_probability), countIf(churn_probability NOT BETWEEN 0 AND 1) "
                            "FROM customer_churn_predictions WHERE prediction_date = {d:Date}", parameters={"d": d}).result_rows[0]
    assert 0.05 < stored[0] < 0.6 and stored[1] == 0
    # the batch path (ids and inputs as raw Native columns) gives what the single-user path gives
    rows = labelled.query(
        "SELECT toString(c.user_id), toString(c.brand_id), c.churn_probability, c.churn_risk_level, c.is_churned, "
        "p.entity_id, toString(p.brand_id), p.prediction_value, p.prediction_label "
        "FROM customer_churn_predictions AS c INNER JOIN ml_model_predictions AS p "
        "ON p.entity_id = toString(c.user_id) AND p.prediction_date = c.prediction_date AND p.model_name = 'churn' "
        "WHERE c.prediction_date = {d:Date} ORDER BY c.user_id LIMIT 5", parameters={"d": d}).result_rows
    brands = dict(labelled.query("SELECT toString(user_id), toString(brand_id) FROM customer_user_features "
                                 "WHERE feature_date = {d:Date}", parameters={"d": d}).result_rows)
    single = ChurnPredictor(churn_result.model, labelled).predict([r[0] for r in rows], feature_date=d).set_index("user_id")
    for user, brand, p, level, churned, entity, brand_all, value, label in rows:
        assert brand == brand_all == brands[user] and entity == user and value == p and label == level
        assert p == pytest.approx(single.loc[user, "churn_probability"], abs=1e-6)
        assert level == single.loc[user, "churn_risk_level"] and churned == single.loc[user, "is_churned"]


def test_bad_inputs_get_clear_errors(churn_result, labelled):
    model = churn_result.model
    frame = churn_result.test.head(5)
    with pytest.raises(InvalidInput, match="missing feature column"):
        model.predict_values(frame.drop(columns=["total_sessions"]))
    broken = frame.copy()
    broken["total_sessions"] = np.inf
    with pytest.raises(InvalidInput, match="infinite values"):
        model.predict_values(broken)
    texts = frame.copy()
    texts["total_sessions"] = "many"
    with pytest.raises(InvalidInput, match="not numeric"):
        model.predict_values(texts)
    gaps = frame.copy()
    gaps["total_sessions"] = np.nan  # missing values are allowed: boosters route them
    assert np.isfinite(model.predict_values(gaps)).all()
    with pytest.raises(NotFound, match="no features for 2030-01-01"):
        predict_batch(CHURN, labelled, model, pd.Timestamp("2030-01-01").date())
    runs_before = len(store.runs(labelled, "conversion", limit=1000))
    with pytest.raises(NotFound, match="no labelled rows"):
        train(get("conversion"), labelled, test_date="2026-03-01")
    runs = store.runs(labelled, "conversion", limit=1000)
    assert len(runs) == runs_before + 1 and runs.iloc[0]["status"] == "failed" and "no labelled rows" in runs.iloc[0]["error_message"]
    # a training date whose 30-day label reaches into the test window would leak it: refused
    with pytest.raises(InvalidInput, match="at least 30 days before the test date"):
        train(CHURN, labelled, train_dates=[(pd.Timestamp(FEATURE_DATES[1]) - pd.Timedelta(days=7)).date()], test_date=FEATURE_DATES[1], register=False)


def test_serving_vectors_give_the_same_inputs_as_the_feature_table(churn_result, labelled):
    from ownlens.ml.models.rows import lookup_frame, lookup_vectors

    d = FEATURE_DATES[1]
    users = [u for (u,) in labelled.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} "
                                          "ORDER BY user_id LIMIT 40", parameters={"d": d}).result_rows]
    model = churn_result.model
    ids, _, packed = lookup_vectors(labelled, CHURN, d, users, model.encoder.index)
    wide = lookup_frame(labelled, CHURN, d, users).set_index("user_id").loc[ids].reset_index()
    np.testing.assert_allclose(packed, model.matrix(wide), equal_nan=True)
    # the newest date comes from the in-memory dictionary, of this database; an older date from the table
    from ownlens.ml.models.rows import VECTOR_DICT_LOOKUP, _json_rows

    params = {"users": users, "signature": CHURN.features.signature}
    assert len(_json_rows(labelled, VECTOR_DICT_LOOKUP, params | {"d": d})) == len(users)
    assert _json_rows(labelled, VECTOR_DICT_LOOKUP, params | {"d": FEATURE_DATES[0]}) == []
    older = [u for (u,) in labelled.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} "
                                          "ORDER BY user_id LIMIT 10", parameters={"d": FEATURE_DATES[0]}).result_rows]
    ids, dates, _ = lookup_vectors(labelled, CHURN, FEATURE_DATES[0], older, model.encoder.index)
    assert sorted(ids) == sorted(older) and set(dates) == {FEATURE_DATES[0]}


def test_click_model_on_user_article_pairs(labelled):
    from ownlens.ml.models.content.click import CLICK, ClickPredictor

    result = train(CLICK, labelled)
    assert result.split["kind"] == "time" and result.split["test_rows"] > 1000
    assert 0.62 < result.metrics["roc_auc"] <= result.oracle_metrics["roc_auc"] + 0.02
    assert abs(result.test["prediction"].mean() - result.metrics["positive_rate"]) < 0.05  # calibrated
    d = FEATURE_DATES[1]
    user, article = labelled.query(
        "SELECT toString(e.user_id), toString(e.article_id) FROM customer_events AS e "
        "WHERE e.event_type = 'article_impression' AND e.event_timestamp >= {d:Date} AND e.user_id IN "
        "(SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date}) LIMIT 1", parameters={"d": d}).result_rows[0]
    scored = ClickPredictor(result.model, labelled).predict(user, article_id=[article, "00000000-0000-4000-8000-000000000001"], feature_date=d)
    assert list(scored["article_id"]) == [article] and 0 < scored["click_probability"].iloc[0] < 1
    assert "have no features" in scored.attrs["message"]
    with pytest.raises(InvalidInput, match="pass article_id"):
        ClickPredictor(result.model, labelled).predict(user)
    batch = predict_batch(CLICK, labelled, result.model, d)
    rows = labelled.query("SELECT count(), uniqExact(entity_id), any(entity_type) FROM ml_model_predictions "
                          "WHERE model_name = 'click' AND prediction_date = {d:Date}", parameters={"d": d}).result_rows[0]
    assert rows[0] == rows[1] == batch["rows"] > 0 and rows[2] == "user_article"


def test_hyper_parameter_search_and_cross_validation(labelled):
    result = train(get("engagement"), labelled, tune_trials=3, cv_folds=3, register=False)
    assert set(result.extra["tuned_params"]) == {"n_estimators", "learning_rate", "max_depth"}
    cv = result.extra["cross_validation"]
    assert cv["folds"] == 3 and len(cv["scores"]) == 3 and 0.3 < cv["mean"] < 1
    assert result.model.version is None  # not registered


@pytest.mark.parametrize("estimator", [OwnLensClassifier("logistic"), OwnLensClassifier("random_forest", n_estimators=5),
                                       OwnLensClassifier("mlp"), OwnLensRegressor("linear"), OwnLensRegressor("lightgbm", n_estimators=5)])
def test_every_algorithm_round_trips_through_its_safe_format(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(int) if isinstance(estimator, OwnLensClassifier) else X[:, 0] * 2
    fitted = estimator.fit(X, y)
    files = fitted.to_files()
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)
    loaded = type(estimator).from_files(files)
    before = fitted.predict_proba(X) if isinstance(estimator, OwnLensClassifier) else fitted.predict(X)
    after = loaded.predict_proba(X) if isinstance(estimator, OwnLensClassifier) else loaded.predict(X)
    np.testing.assert_allclose(after, before)


@pytest.mark.parametrize("estimator", [OwnLensClassifier(n_estimators=60), OwnLensRegressor(objective="poisson", n_estimators=60),
                                       OwnLensRegressor(n_estimators=60, max_depth=7)])
def test_compiled_trees_score_like_the_booster(estimator):
    """The numpy walk the API uses for a few rows gives XGBoost's own predictions, missing values included."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 6))
    X[rng.random(X.shape) < 0.15] = np.nan
    X[:, 2] = rng.integers(0, 4, len(X))
    signal = np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * X[:, 2]
    y = (signal > 0.5).astype(int) if isinstance(estimator, OwnLensClassifier) else rng.poisson(np.exp(np.clip(signal, -3, 2)))
    fitted = type(estimator).from_files(estimator.fit(X, y).to_files())  # as served: read back from the artifact
    X_new = rng.normal(size=(300, 6))
    X_new[rng.random(X_new.shape) < 0.15] = np.nan
    expected = fitted.predict_proba(X_new)[:, 1] if isinstance(estimator, OwnLensClassifier) else fitted.predict(X_new)
    few = np.concatenate([fitted.predict_few(X_new[i:i + 1]) for i in range(len(X_new))])
    assert fitted.compiled_ is not None  # the numpy path was taken, not the booster fallback
    np.testing.assert_allclose(few, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fitted.predict_few(X_new[:20]), expected[:20], rtol=1e-5, atol=1e-7)


def test_artifacts_at_an_fsspec_url_round_trip_with_their_checksum(churn_result, labelled):
    """Any fsspec URL works as the artifact store (memory:// here; s3://, gs://... with their backends)."""
    fsspec = pytest.importorskip("fsspec")
    trained = churn_result.model
    model = TrainedModel(trained.spec_name, trained.task, trained.features, trained.encoder, trained.estimator)
    register(labelled, model, algorithm="xgboost", metrics={"roc_auc": 0.5}, window=(FEATURE_DATES[0], FEATURE_DATES[0]),
             description="fsspec test", artifacts_uri="memory://ownlens-artifacts")
    uri = store.get(labelled, "churn", model.version)["artifact_uri"]
    assert uri.startswith("memory://ownlens-artifacts/churn/")
    loaded = load(labelled, "churn", model.version)
    X = np.random.default_rng(0).normal(size=(5, len(trained.features)))
    np.testing.assert_allclose(loaded.predict_matrix(X), trained.predict_matrix(X))
    with fsspec.open(uri, "rb") as fh:
        data = fh.read()
    with fsspec.open(uri, "wb") as fh:
        fh.write(data[:-10] + bytes(10))
    with pytest.raises(CorruptArtifact, match="modified since it was registered"):
        load(labelled, "churn", model.version)
    with fsspec.open(uri, "wb") as fh:  # put it back: later tests may load the latest version
        fh.write(data)
    assert load(labelled, "churn", model.version).version == model.version


def test_mlflow_trouble_never_fails_a_training_run(labelled, monkeypatch, caplog):
    """MLFLOW_TRACKING_URI set but MLflow missing (or failing): the run is registered anyway, with a warning."""
    import logging
    import sys

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with caplog.at_level(logging.WARNING):
        result = train(CHURN, labelled, limit=600)
    assert result.model.version and store.get(labelled, "churn", result.model.version)["stage"] == "candidate"
    assert "mlflow is not installed" in caplog.text


def test_rebuilding_vectors_reloads_a_loaded_serving_dictionary(labelled):
    from ownlens.ml.features.customer import build_user_feature_vectors
    from ownlens.ml.models.rows import VECTOR_DICT_LOOKUP, _json_rows

    d = FEATURE_DATES[1]
    user = labelled.query("SELECT toString(user_id) FROM customer_user_feature_vectors WHERE feature_date = {d:Date} LIMIT 1",
                          parameters={"d": d}).result_rows[0][0]
    assert _json_rows(labelled, VECTOR_DICT_LOOKUP, {"d": d, "users": [user], "signature": CHURN.features.signature})
    state = "SELECT status, loading_start_time FROM system.dictionaries WHERE database = currentDatabase() AND name = 'dict_user_feature_vectors'"
    before = labelled.query(state).result_rows[0]
    assert str(before[0]).startswith("LOADED")  # (LOADED_AND_RELOADING while its schedule reloads it)
    import time

    time.sleep(1.1)  # loading_start_time has one-second resolution
    build_user_feature_vectors(labelled, d)
    after = labelled.query(state).result_rows[0]
    assert str(after[0]).startswith("LOADED") and after[1] > before[1]


def test_a_crafted_artifact_cannot_put_sql_into_scoring(churn_result, labelled, tmp_path):
    """Names read from a model file never reach SQL text: an artifact naming inputs its model does not have is
    refused when loaded, and scoring binds every input name as an identifier after checking it."""
    import io
    import json
    import zipfile

    from ownlens.ml.registry.artifacts import read_artifact, write_artifact

    row = store.get(labelled, "churn", churn_result.model.version)
    files = read_artifact(row["artifact_uri"], row["artifact_sha256"])
    meta = json.loads(files["model.json"])
    evil = "total_sessions) AS x FROM file('/etc/passwd') --"
    meta["features"][0] = evil
    crafted = tmp_path / "crafted.zip"
    write_artifact(str(crafted), {**files, "model.json": json.dumps(meta).encode()})  # a consistent manifest: no help
    with pytest.raises(InvalidInput, match="names inputs that churn does not have"):
        ChurnModel().load(str(crafted))
    assert zipfile.ZipFile(io.BytesIO(crafted.read_bytes())).namelist()  # it is a well-formed artifact otherwise
    # built in memory instead of loaded, the same model is refused by the batch path before any SQL runs
    trained = churn_result.model
    smuggled = TrainedModel("churn", trained.task, [evil, *trained.features[1:]], trained.encoder, trained.estimator)
    with pytest.raises(InvalidInput, match="not inputs of churn"):
        predict_batch(CHURN, labelled, smuggled, FEATURE_DATES[1])
