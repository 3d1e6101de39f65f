"""The scheduling recipes under deploy/: the Airflow DAGs load (when Airflow is installed) with a task per model and
step in the right order, and name every model even where OwnLens is not installed; the cron script is valid bash."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from ownlens.ml.models import names

ROOT = Path(__file__).parent.parent

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


def _cli_accepts(args: list[str]) -> subprocess.CompletedProcess:
    """Whether the CLI parses ``args`` (its options and values, then --help instead of running)."""
    import sys

    return subprocess.run([sys.executable, "-m", "ownlens.ml.cli", *args, "--help"], capture_output=True, text=True, timeout=120)


def test_the_compose_file_runs_ownlens_against_the_clickhouse_service_it_starts():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    server = services["clickhouse"]
    assert server["image"].startswith("clickhouse/clickhouse-server:")  # the official image
    ours = {name: s for name, s in services.items() if s.get("image") == "ownlens-ml"}
    assert set(ours) == {"init", "api", "scheduler", "ownlens"}
    from urllib.parse import urlparse

    for name, service in ours.items():
        dsn = urlparse(service["environment"]["OWNLENS_DSN"].replace("${CLICKHOUSE_PASSWORD:-change-me}", "pw"))
        assert (dsn.scheme, dsn.hostname, dsn.port, dsn.path.strip("/"), dsn.username) == (
            "http", "clickhouse", 8123, server["environment"]["CLICKHOUSE_DB"], server["environment"]["CLICKHOUSE_USER"]), name
        assert service["volumes"] == ["ownlens-home:/data"]  # artifacts the scheduler writes are the ones the API loads
        command = service["command"]
        if command[0] == "ownlens-ml":
            accepted = _cli_accepts(command[1:])
            assert accepted.returncode == 0, (name, accepted.stderr[-500:])
    assert "deploy/daily.sh" in services["scheduler"]["command"][-1]
    assert services["api"]["ports"] == ["8000:8000"] and "--host" in services["api"]["command"]


def test_the_dockerfile_installs_the_package_and_serves_it_unprivileged():
    import json

    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert all((ROOT / path).exists() for paths in copies for path in paths)  # everything it copies is in the repository
    assert 'RUN pip install ".[reports]"' in lines and "USER ownlens" in lines  # no embedded engine: the DSN is a server
    command = json.loads(next(line for line in lines if line.startswith("CMD ["))[4:])
    assert command[0] == "ownlens-ml" and _cli_accepts(command[1:]).returncode == 0
