"""kill -9 in the middle of each long step, then the step again: the warehouse ends exactly as after one uninterrupted
run (rows, keys, no duplicates, no scratch tables, no run left `running`). Every command in its own process, on a
warehouse of its own (the embedded engine admits one process at a time), as a user or a scheduler runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

D0, D1 = "2026-01-26", "2026-02-25"
# rows, and distinct keys (a duplicate shows as more rows than keys), of the tables the steps write
FINGERPRINT = r"""
import json, sys
from ownlens.ml.warehouse import connect
c = connect()
keys = {"customer_user_features": "user_id, feature_date", "customer_user_labels": "user_id, feature_date",
        "customer_user_state": "user_id, state_date", "customer_churn_predictions": "user_id, prediction_date",
        "ml_model_predictions": "model_name, entity_id, prediction_date", "ml_model_registry": "model_name, model_version"}
final = {"ml_model_registry": " FINAL"}  # versions are updated in place (stages)
out = {t: c.query(f"SELECT count(), uniqExact({k}) FROM {t}{final.get(t, '')}").result_rows[0] for t, k in keys.items()}
out["scratch"] = [r[0] for r in c.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '_')").result_rows]
out["running"] = c.command("SELECT count() FROM ml_model_training_runs FINAL WHERE status = 'running'")
out["interrupted"] = c.command("SELECT count() FROM ml_model_training_runs FINAL WHERE startsWith(error_message, 'interrupted')")
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("kill")
    env = {**os.environ, "OWNLENS_HOME": str(home), "OWNLENS_DSN": f"chdb://{home}/warehouse", "NO_COLOR": "1"}
    for args in (["init"], ["simulate", "--users", "3000", "--days", "85", "--seed", "11"], ["features", "build", "--date", D0],
                 ["features", "build", "--date", D1], ["train", "churn", "--promote"], ["predict", "churn", "--date", D1]):
        done = cli(args, env)
        assert done.returncode == 0, (args, done.stderr[-2000:])
    return env


def cli(args, env):
    return subprocess.run([sys.executable, "-m", "ownlens.ml.cli", *args], env=env, capture_output=True, text=True, timeout=600)


def fingerprint(env) -> dict:
    done = subprocess.run([sys.executable, "-c", FINGERPRINT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def killed(args, env, after_s: float) -> bool:
    """Start ``args`` and kill -9 it ``after_s`` seconds in; whether it was still running then."""
    process = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(after_s)
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return running


@pytest.mark.parametrize("step", [["features", "build", "--date", D1], ["predict", "churn", "--date", D1]])
def test_a_step_killed_mid_way_then_run_again_ends_as_one_run(env, step):
    t0 = time.perf_counter()
    assert cli(step, env).returncode == 0
    took = time.perf_counter() - t0
    expected = fingerprint(env)
    interrupted = 0
    for share in (0.5, 0.8):  # points within the run (start-up, about 1.5 s, included)
        interrupted += killed(step, env, took * share)
        assert cli(step, env).returncode == 0
        assert fingerprint(env) == expected, share
    assert interrupted, "every run ended before it could be killed"


def test_a_training_run_killed_mid_way_is_marked_failed_by_the_next(env):
    # killed just after the run is recorded (its log line): mid-way through reading rows and fitting
    process = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", "-v", "--log-json", "train", "churn"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "training started" in line:
            break
    time.sleep(0.05)  # (training churn on this small publisher takes well under a second: kill it early)
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert cli(["train", "churn"], env).returncode == 0
    after = fingerprint(env)
    assert after["running"] == 0 and after["scratch"] == []  # killed runs are marked failed by the next one
    assert after["interrupted"] == 1
    assert after["ml_model_registry"][0] == after["ml_model_registry"][1]  # versions unique


WORKER = r"""
import json
from ownlens.ml.warehouse import connect
c = connect()
rows = c.query("SELECT worker, count(), uniqExact(user_id, window_end), sum(cityHash64(user_id, window_end, round(prediction_value, 9))) "
               "FROM ml_realtime_predictions GROUP BY worker").result_rows
print(json.dumps({w: [int(n), int(u), str(h)] for w, n, u, h in rows}))
"""


def test_a_worker_killed_mid_way_resumes_without_losing_or_repeating_a_user(env):
    since = "2026-03-29T12:00:00"
    t0 = time.perf_counter()
    assert cli(["worker", "churn", "--once", "--since", since, "--name", "whole"], env).returncode == 0
    took = time.perf_counter() - t0
    assert killed(["worker", "churn", "--once", "--since", since, "--name", "killed"], env, took * 0.6)
    assert cli(["worker", "churn", "--once", "--name", "killed"], env).returncode == 0  # resumes at its watermark
    done = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, timeout=300)
    found = json.loads(done.stdout)
    assert found["whole"][0] > 0 and found["killed"] == found["whole"]  # the same users and windows, scored alike


def test_an_ab_readout_killed_mid_way_then_again_records_one_result(env):
    versions = [v["version"] for v in json.loads(cli(["models", "list", "churn", "--json"], env).stdout)][:2]
    assert cli(["abtest", "create", "k", "--model", "churn", "--a", versions[0], "--b", versions[1], "--start", D0], env).returncode == 0
    t0 = time.perf_counter()
    assert cli(["abtest", "status", "k"], env).returncode == 0
    took = time.perf_counter() - t0
    killed(["abtest", "status", "k"], env, took * 0.8)
    again = cli(["abtest", "status", "k", "--json"], env)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "running"
    rows = subprocess.run([sys.executable, "-c", "from ownlens.ml.warehouse import connect; print(connect().command("
                           "\"SELECT count() FROM ml_model_ab_tests FINAL WHERE test_name = 'k'\"))"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert rows.stdout.strip() == "1"


def test_commands_and_notebooks_use_the_warehouse_through_serve_while_it_holds_it(env):
    """With the embedded default, `serve` holds the warehouse; the CLI and the Python API go through it (its
    /warehouse endpoint, found by the hand-off file next to the warehouse) instead of failing, API keys or not."""
    import socket
    import urllib.request

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    handoff = os.path.join(env["OWNLENS_HOME"], "warehouse", ".ownlens-serve.json")
    server = subprocess.Popen([sys.executable, "-m", "ownlens.ml.cli", "serve", "--port", str(port), "--monitor-every", "0"],
                              env={**env, "OWNLENS_API_KEYS": "secret"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not os.path.exists(handoff) and time.time() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert os.path.exists(handoff), server.stderr.read().decode()[-2000:] if server.poll() is not None else "no hand-off file"
        assert oct(os.stat(handoff).st_mode & 0o777) == "0o600"  # the token is the warehouse: its user's alone
        status = cli(["status", "--json"], env)
        assert status.returncode == 0, status.stderr[-2000:]
        assert json.loads(status.stdout)["feature_dates"] == [D0, D1]
        trained = cli(["train", "churn", "--json"], env)
        assert trained.returncode == 0, trained.stderr[-2000:]
        version = json.loads(trained.stdout)["version"]
        for args in (["predict", "churn", "--date", D1], ["monitor", "churn", "--date", D1], ["models", "promote", "churn", version]):
            done = cli(args, env)
            assert done.returncode == 0, (args, done.stderr[-2000:])
        served = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/models/churn", headers={"X-API-Key": "secret"}), timeout=30).read())
        assert served["version"] == version  # the server sees what the CLI did, in the same warehouse
        notebook = subprocess.run([sys.executable, "-c", "from ownlens.ml.warehouse import connect\n"
                                   "from ownlens.ml.models import get\nfrom ownlens.ml.pipelines.inference import lookup\n"
                                   "c = connect()\nusers = c.query_df('SELECT toString(user_id) AS u FROM customer_user_features "
                                   f"WHERE feature_date = {{d:Date}} LIMIT 3', parameters={{'d': '{D1}'}})['u'].tolist()\n"
                                   "print(len(lookup(get('churn'), c, users, feature_date='" + D1 + "')))"],
                                  env=env, capture_output=True, text=True, timeout=300)
        assert notebook.returncode == 0 and notebook.stdout.strip() == "3", notebook.stderr[-2000:]
        after = fingerprint(env)  # through the server as well: one row per key, no scratch tables left
        assert all(rows == keys for rows, keys in (v for k, v in after.items() if isinstance(v, list) and len(v) == 2 and k != "scratch"))
        assert after["scratch"] == [] and after["running"] == 0
        import base64

        token = json.load(open(handoff))["token"]
        as_password = urllib.request.Request(f"http://127.0.0.1:{port}/warehouse?query=SELECT%2042", data=b"",
                                             headers={"Authorization": "Basic " + base64.b64encode(f"default:{token}".encode()).decode()})
        assert urllib.request.urlopen(as_password, timeout=30).read() == b"42\n"  # any ClickHouse HTTP client, token as password
        refused = urllib.request.Request(f"http://127.0.0.1:{port}/warehouse/?query=SELECT%201", data=b"")
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(refused, timeout=30)  # no token: no SQL, whatever the API keys
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    assert os.path.exists(handoff)  # killed: the hand-off file stays behind, and is ignored
    alone = cli(["status", "--json"], env)
    assert alone.returncode == 0 and json.loads(alone.stdout)["feature_dates"] == [D0, D1]
