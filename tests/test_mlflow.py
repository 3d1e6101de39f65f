"""The registry mirrored to MLflow (issue 18, item 8): runs with their metrics and the oracle's, the report, each
version a loadable pyfunc model giving OwnLens's own predictions, stage changes as tags and the production alias."""

from __future__ import annotations

import pytest
from conftest import copy_of

mlflow = pytest.importorskip("mlflow", reason="the MLflow mirror is an extra: pip install 'ownlens[mlflow]'")


def test_each_version_is_a_loadable_mlflow_model_with_its_metrics_report_and_stage(labelled, trained, make_db, tmp_path, monkeypatch):
    from ownlens.ml.models import get
    from ownlens.ml.pipelines.training import train_model
    from ownlens.ml.registry import store

    monkeypatch.chdir(tmp_path)  # MLflow puts artifacts under ./mlruns: never in the repository
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)  # read from the environment
    client = copy_of(labelled, make_db)
    result, summary = train_model(get("churn"), client)
    version = result.model.version
    run = mlflow.get_run(result.extra["mlflow_run_id"])
    assert run.data.metrics["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert run.data.metrics["oracle_roc_auc"] == pytest.approx(result.oracle_metrics["roc_auc"])  # the oracle beside it
    assert run.data.tags["ownlens_version"] == version
    reported = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "report")]
    assert reported == ["report/report.html"]
    (mv,) = mlflow.MlflowClient().search_model_versions(f"name='ownlens-churn' and tag.ownlens_version='{version}'")
    assert mv.tags["ownlens_stage"] == "candidate"
    loaded = mlflow.pyfunc.load_model(f"models:/ownlens-churn/{mv.version}")
    rows = result.test.head(200)
    features = loaded.metadata.metadata["feature_names"]
    assert list(loaded.predict(rows[features])) == list(result.model.predict_values(rows))  # the same floats, to the last bit
    store.promote(client, "churn", version)
    promoted = mlflow.MlflowClient().get_model_version_by_alias("ownlens-churn", "production")
    assert promoted.version == mv.version and promoted.tags["ownlens_stage"] == "production"


def test_a_failing_mirror_never_fails_training(labelled, trained, make_db, monkeypatch, caplog, tmp_path):
    from ownlens.ml.models import get
    from ownlens.ml.models.runs import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    result = train(get("engagement"), copy_of(labelled, make_db))
    assert result.model.version and "mlflow_run_id" not in result.extra
    assert "the warehouse registry has it" in caplog.text
