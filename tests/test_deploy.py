"""The scheduling recipes under deploy/: the Airflow DAGs load (when Airflow is installed) with a task per model and
step in the right order, and name every model even where OwnLens is not installed; the cron script is valid bash."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from ownlens.ml.models import names

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_the_dags_fallback_list_names_every_model():
    tree = ast.parse((DEPLOY / "airflow" / "ownlens_daily.py").read_text())
    handler = next(n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler))
    assigned = next(n for n in handler.body if isinstance(n, ast.Assign) and n.targets[0].id == "MODELS")
    assert ast.literal_eval(assigned.value) == names()  # (where the scheduler parses it without OwnLens installed)


def test_the_dags_load_in_airflow_with_a_task_per_model_and_step(tmp_path, monkeypatch):
    pytest.importorskip("airflow", reason="Airflow is not installed here (it loads them when it is: pip install apache-airflow)")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DEPLOY / "airflow"), include_examples=False)
    assert bag.import_errors == {} and set(bag.dags) == {"ownlens_daily", "ownlens_weekly_retrain"}
    daily = bag.dags["ownlens_daily"]
    assert len(daily.tasks) == 1 + 2 * len(names())
    for name in names():
        assert daily.get_task(f"predict_{name}").upstream_task_ids == {"features_build"}
        assert daily.get_task(f"monitor_{name}").upstream_task_ids == {f"predict_{name}"}


def test_the_daily_script_is_valid_bash_and_executable():
    script = DEPLOY / "daily.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert script.stat().st_mode & 0o111
