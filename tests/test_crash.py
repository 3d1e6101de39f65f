"""After a crash: what a killed step leaves behind is cleaned by the next run, and a killed simulation is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

from conftest import FEATURE_DATES, copy_of

from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.runs import train
from ownlens.ml.registry import store

LEFT_TABLES = "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '_') ORDER BY name"


def test_scratch_tables_and_running_runs_of_a_killed_process_are_cleaned_by_the_next_run(sim, make_db):
    from ownlens.ml.models.scoring import predict_batch

    client = copy_of(sim, make_db)
    # what a process killed mid-way leaves: its scratch tables (one in the naming of earlier versions), a run `running`
    client.command("CREATE TABLE _ownlens_tmp_pred_all_0123456789ab AS ml_model_predictions")
    client.command("CREATE TABLE _pred_raw_0123456789ab (user_id UUID, value Float64) ENGINE = Memory")
    killed = str(uuid.uuid4())
    store.record_run(client, {"run_id": killed, "model_name": "churn", "status": "running", "package_version": "0",
                              "started_at": datetime.now(timezone.utc), "parameters": {}})
    result = train(CHURN, client, limit=600)
    runs = store.runs(client, "churn").set_index("run_id")
    assert runs.loc[uuid.UUID(killed), "status"] == "failed" and "interrupted" in runs.loc[uuid.UUID(killed), "error_message"]
    assert runs.loc[uuid.UUID(result.run_id), "status"] == "succeeded"
    predict_batch(CHURN, client, result.model, FEATURE_DATES[1])
    assert client.query(LEFT_TABLES).result_rows == []  # the leftovers are gone, and the run left none of its own


def _cli(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "ownlens.ml.cli", *args], env=env, capture_output=True, text=True, timeout=600, **kw)


def test_a_killed_simulation_leaves_a_state_status_reports_as_incomplete(tmp_path):
    env = {**os.environ, "OWNLENS_HOME": str(tmp_path), "OWNLENS_DSN": f"chdb://{tmp_path}/warehouse", "NO_COLOR": "1"}
    assert _cli(["init"], env).returncode == 0
    started = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", "simulate", "--users", "60000", "--days", "60"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(10)  # started replacing the data (a second or two in), far from done (60,000 users take a minute or more)
    assert started.poll() is None, "the simulation ended before it could be killed"
    started.send_signal(signal.SIGKILL)
    started.wait()
    status = _cli(["status", "--json"], env)
    assert status.returncode == 1 and "did not finish" in status.stderr and '"complete": false' in status.stdout
    assert _cli(["simulate", "--users", "200", "--days", "20"], env).returncode == 0
    again = _cli(["status", "--json"], env)
    assert again.returncode == 0 and '"complete": true' in again.stdout
