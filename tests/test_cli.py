"""The ownlens-ml command as a user runs it: separate processes, exit codes, one-line errors."""

import json
import os
import subprocess
import sys

import pytest


def run(args, home, dsn=None, timeout=300):
    env = {**os.environ, "OWNLENS_HOME": str(home), "COLUMNS": "200"}
    env.pop("OWNLENS_DSN", None)
    if dsn:
        env["OWNLENS_DSN"] = dsn
    return subprocess.run([sys.executable, "-m", "ownlens.ml.cli", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_end_to_end_commands(tmp_path):
    assert run(["init"], tmp_path).returncode == 0
    again = run(["init"], tmp_path)
    assert again.returncode == 0 and "already up to date" in again.stdout
    sim = run(["simulate", "--users", "1200", "--days", "50", "--seed", "2", "--json"], tmp_path)
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["users"] == 1200
    built = run(["features", "build", "--from", "2026-02-01", "--to", "2026-02-02", "--json"], tmp_path)
    assert built.returncode == 0, built.stderr
    rows = json.loads(built.stdout)
    assert set(rows) == {"2026-02-01", "2026-02-02"} and rows["2026-02-01"]["customer_user_features"] > 300
    again = run(["features", "build", "--date", "2026-02-02", "--from-history", "--json"], tmp_path)
    assert again.returncode == 0 and json.loads(again.stdout)["2026-02-02"] == rows["2026-02-02"]
    quality = run(["features", "quality", "--json"], tmp_path)
    assert quality.returncode == 0 and json.loads(quality.stdout)["ok"]
    report = run(["explore", "--out", str(tmp_path / "report")], tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Feature correlations" in page and "data:image/png;base64" in page and "Target variables" in page and "churn_rate" in page
    status = json.loads(run(["status", "--json"], tmp_path).stdout)
    assert status["feature_dates"] == ["2026-02-01", "2026-02-02"] and status["rows"]["customer_sessions"] > 1000


@pytest.mark.parametrize("args, code, message", [
    (["simulate", "--users", "0"], 2, "--users must be at least 1"),
    (["simulate", "--start", "2026/01/05"], 2, "is not a date: use YYYY-MM-DD"),
    (["features", "build"], 2, "say which date to build"),
    (["features", "build", "--date", "2026-02-01"], 5, "run `ownlens-ml init`"),
    (["init", "--dsn", "mysql://db"], 2, "unsupported DSN"),
    (["init", "--dsn", "http://127.0.0.1:9/db"], 4, "cannot reach the ClickHouse server"),
    (["status", "--dsn", "chdb:///dev/null"], 2, "is a file, not a directory"),
    (["status", "--dsn", "chdb:///tmp/" + "w" * 300], 2, "has a name longer than 255 bytes"),
])
def test_bad_input_gives_one_line_and_exit_code(tmp_path, args, code, message):
    result = run(args, tmp_path)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line and "building" not in line]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_warehouse_held_by_another_process(sim, warehouse_path, tmp_path):
    # this test process holds the shared warehouse open; a second process must be told, not hang
    result = run(["status"], tmp_path, dsn=f"chdb://{warehouse_path}")
    assert result.returncode == 4
    assert "in use by another process" in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help_with_an_example():
    import typer
    from typer.testing import CliRunner

    from ownlens.ml.cli import app

    def commands(group, prefix=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, (*prefix, name))
            else:
                yield (*prefix, name)

    found = list(commands(typer.main.get_command(app)))
    assert {("train",), ("predict",), ("models", "promote"), ("monitor",), ("abtest", "create"), ("serve",), ("run",)} <= set(found)
    for command in found:
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Example" in result.output, command


@pytest.fixture
def cli(make_db, warehouse_path, capsys, monkeypatch):
    """The command line in this process, on a fresh database of the test warehouse: what a subprocess would do,
    without paying a new interpreter and warehouse start-up for every command (the tests above do that)."""
    monkeypatch.setenv("COLUMNS", "200")
    return in_process(f"chdb://{warehouse_path}?database={make_db(init=False).database}", capsys, monkeypatch)


def in_process(dsn, capsys, monkeypatch):
    """``invoke(args)``: ``ownlens-ml ARGS --dsn DSN`` in this process; its exit code and what it printed."""
    from types import SimpleNamespace

    from ownlens.ml.cli import main

    def invoke(args):
        monkeypatch.setattr(sys, "argv", ["ownlens-ml", *args, "--dsn", dsn])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        printed = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=printed.out, stderr=printed.err)

    return invoke


def test_train_predict_evaluate_and_registry_commands(cli):
    assert cli(["init"]).returncode == 0
    assert cli(["simulate", "--users", "1500", "--days", "60", "--seed", "3"]).returncode == 0
    built = cli(["features", "build", "--date", "2026-01-26"])
    assert built.returncode == 0, built.stderr
    assert cli(["features", "build", "--date", "2026-02-02"]).returncode == 0

    trained = cli(["train", "churn", "--json", "--promote"])
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["version"] == "1.0.0" and result["split"]["test_date"] == "2026-02-02"
    assert result["split"]["kind"].startswith("random split of 2026-02-02")  # 2026-01-26 is under 30 days before it
    assert result["metrics"]["roc_auc"] > 0.7 and result["oracle"]["roc_auc"] > result["metrics"]["roc_auc"] - 0.05
    assert "data:image/png;base64" in open(result["report"]).read()

    listed = json.loads(cli(["models", "list", "--json"]).stdout)
    assert [(m["model"], m["version"], m["stage"]) for m in listed] == [("churn", "1.0.0", "production")]

    scored = cli(["predict", "churn", "--json"])
    assert scored.returncode == 0, scored.stderr
    scored = json.loads(scored.stdout)
    assert scored["rows"] > 300 and scored["date"] == "2026-02-02" and scored["version"] == "1.0.0"

    evaluated = json.loads(cli(["evaluate", "churn", "--json"]).stdout)
    assert "roc_auc" in evaluated["oracle"] and evaluated["split"]["test_date"] == "2026-02-02"
    assert "optimistic" in evaluated["split"]["warning"]  # it trained on rows of that date

    unknown = cli(["predict", "churn", "--user", "00000000-0000-4000-8000-000000000000", "--json"])
    assert unknown.returncode == 3 and "00000000-0000-4000-8000-000000000000" in unknown.stderr  # as the API's 404

    click = cli(["train", "click", "--json", "--no-report"])
    assert click.returncode == 0, click.stderr
    pair = cli(["predict", "click", "--json", "--user", "00000000-0000-4000-8000-000000000000", "--article", "00000000-0000-4000-8000-000000000001"])
    assert pair.returncode == 3 and "pairs have no features" in pair.stderr

    for name, key in (("segmentation", "silhouette"), ("recommendation", "precision_at_k"), ("ad_placement", "revenue_per_1000")):
        task = cli(["train", name, "--json", "--promote"])
        assert task.returncode == 0, task.stderr
        task = json.loads(task.stdout)
        assert task["metrics"][key] > 0 and task["stage"] == "production" and "data:image/png;base64" in open(task["report"]).read()
        stored = cli(["predict", name, "--json"])
        assert stored.returncode == 0 and json.loads(stored.stdout)["rows"] > 300, stored.stderr
    recs = cli(["predict", "recommendation", "--json", "--user", "00000000-0000-4000-8000-000000000000"])
    assert recs.returncode == 0, recs.stderr
    rows = json.loads(recs.stdout)["predictions"]  # every model's --user --json has this shape
    assert len(rows) == 10 and rows[0]["cold_start"] and [r["rank"] for r in rows] == list(range(1, 11))
    more = json.loads(cli(["predict", "recommendation", "--json", "--user", "00000000-0000-4000-8000-000000000000",
                           "--option", "k=15"]).stdout)["predictions"]
    assert len(more) == 15
    evaluated = cli(["evaluate", "segmentation", "--json"])  # every model is evaluated the same way
    assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["metrics"]["silhouette"] > 0, evaluated.stderr

    for args, code, message in [
        (["run", "--model", "nope"], 3, "unknown model 'nope'"),
        (["train", "segmentation", "--clusters", "1"], 2, "at least 2"),
        (["train", "segmentation", "--algorithm", "xgboost"], 2, "segmentation does not take algorithm"),
        (["predict", "click", "--user", "00000000-0000-4000-8000-000000000000"], 2, "add --article ID"),
        (["predict", "recommendation", "--user", "00000000-0000-4000-8000-000000000000", "--option", "k=0"], 2, "greater than"),
        (["train", "nope"], 3, "unknown model 'nope'"),
        (["predict", "nope"], 3, "unknown model 'nope'"),
        (["models", "promote", "churn", "9.9.9"], 3, "has no version '9.9.9'"),
        (["models", "rollback", "churn"], 3, "nothing to roll back to"),
        (["evaluate", "conversion"], 3, "no model named 'conversion'"),
        (["train", "churn", "--test-date", "2026-02-20"], 3, "no labelled rows for churn on 2026-02-20"),
    ]:
        bad = cli(args)
        assert bad.returncode == code and message in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)

    master = cli(["run", "--model", "churn", "--skip-exploration", "--json"])
    assert master.returncode == 0, master.stderr
    summary = json.loads(master.stdout)
    churn = summary["models"]["churn"]
    assert churn["predictions"] > 300 and churn["prediction_table"] == "customer_churn_predictions" and "drift_alerts" in churn
    assert summary["feature_dates"][-1] == "2026-03-06" and any(s["step"] == "features 2026-03-06" for s in summary["steps"])


# what each command needs to get as far as the warehouse; a new command must be added here (the test says so)
ON_THE_WAREHOUSE = {
    ("status",): [], ("explore",): [], ("train",): ["churn"], ("predict",): ["churn"], ("evaluate",): ["churn"],
    ("monitor",): ["churn"], ("run",): [], ("serve",): ["--port", "1"], ("worker",): ["churn", "--once"], ("trending",): [],
    ("attribution",): [],
    ("features", "build"): ["--date", "2026-02-01"], ("features", "quality"): [], ("models", "list"): [],
    ("models", "show"): ["churn"], ("models", "promote"): ["churn", "1.0.0"], ("models", "rollback"): ["churn"],
    ("abtest", "create"): ["t", "--model", "churn", "--a", "1.0.0", "--b", "1.1.0"],
    ("abtest", "status"): ["t"], ("abtest", "conclude"): ["t"], ("abtest", "refresh"): [],
}
# these create the schema themselves (contract: in a scratch database), or use no warehouse (features dbt writes files)
MAKES_ITS_OWN = {("init",), ("simulate",), ("demo",), ("contract",), ("features", "dbt")}


def test_every_command_on_a_warehouse_without_the_schema_says_run_init(cli):
    import typer

    from ownlens.ml.cli import app

    def commands(group, prefix=()):
        for name, command in group.commands.items():
            yield from commands(command, (*prefix, name)) if hasattr(command, "commands") else [(*prefix, name)]

    found = set(commands(typer.main.get_command(app)))
    assert found - MAKES_ITS_OWN == set(ON_THE_WAREHOUSE), f"add {found - MAKES_ITS_OWN - set(ON_THE_WAREHOUSE)} to ON_THE_WAREHOUSE"
    for command in sorted(found - MAKES_ITS_OWN):
        result = cli([*command, *ON_THE_WAREHOUSE[command]])
        lines = [line for line in result.stderr.splitlines() if line.strip() and "━" not in line and "building" not in line]
        assert result.returncode == 5 and len(lines) == 1 and "run `ownlens-ml init`" in lines[0], (command, result.stderr)


def test_a_server_that_accepts_and_never_answers_fails_within_the_timeout(tmp_path):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does), never reads or answers
    try:
        t0 = time.perf_counter()
        env_dsn = f"http://127.0.0.1:{silent.getsockname()[1]}/db"
        os.environ["OWNLENS_WAREHOUSE_TIMEOUT_S"] = "1"
        try:
            result = run(["status"], tmp_path, dsn=env_dsn, timeout=60)
        finally:
            del os.environ["OWNLENS_WAREHOUSE_TIMEOUT_S"]
        assert result.returncode == 4 and "did not answer within 1 s" in result.stderr and "Traceback" not in result.stderr
        assert time.perf_counter() - t0 < 30
    finally:
        silent.close()


def test_registry_and_training_mistakes_get_one_line(cli):
    assert cli(["init"]).returncode == 0
    for args, code, message in [
        (["models", "rollback", "churn"], 3, "no model named 'churn' is registered"),
        (["models", "rollback", "nosuchmodel"], 3, "unknown model 'nosuchmodel'"),
        (["train", "churn", "--algorithm", "bogus"], 2, "'algorithm' parameter of OwnLensClassifier must be"),
        (["train", "churn", "--cv", "1"], 2, "cv_folds must be 0 (off) or at least 2"),
        (["train", "churn", "--tune", "-1"], 2, "tune_trials must be 0"),
        (["predict", "churn", "--user", "nope"], 2, "'nope' is not a valid id"),
    ]:
        result = cli(args)
        assert result.returncode == code and result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)


def test_log_json_writes_one_json_object_per_line(cli):
    assert cli(["--log-json", "init"]).returncode == 0
    simulated = cli(["--log-json", "simulate", "--users", "200", "--days", "20", "--seed", "4"])
    failed = cli(["--log-json", "features", "build", "--date", "2031-01-01"])
    assert simulated.returncode == 0 and failed.returncode == 3
    lines = [line for r in (simulated, failed) for line in r.stderr.splitlines()]
    records = [json.loads(line) for line in lines]  # no progress bar, no plain line
    assert any(r["event"] == "simulated" and r["users"] == 200 for r in records)
    assert records[-1]["level"] == "error" and "2031-01-01" in records[-1]["event"]


# what a careless or hostile user types where a value goes: any text, and the values that broke parsers before
VALUES = [
    "2026-02-25", "1969-12-31", "2150-01-01", "0000-00-00", "2026-02-30", "'; DROP TABLE ml_model_registry; --",
    "00000000-0000-4000-8000-000000000000", "{x:String}", "production", "latest", "-1", "1e400", "", " ", "\x00",
    "file('/etc/passwd')", "../../etc/passwd", "é" * 300,
]
COMMANDS = [
    lambda v, w: ["predict", "churn", "--user", v],
    lambda v, w: ["predict", "churn", "--user", v, "--date", w],
    lambda v, w: ["predict", "click", "--user", v, "--article", w],
    lambda v, w: ["models", "show", "churn", v],
    lambda v, w: ["models", "list", v],
    lambda v, w: ["evaluate", "churn", "--version", v, "--test-date", w],
    lambda v, w: ["monitor", "churn", "--date", v, "--reference", w],
    lambda v, w: ["abtest", "status", v],
    lambda v, w: ["features", "quality", "--date", v],
]


def test_any_argument_gives_a_result_or_one_documented_error(labelled, trained, warehouse_path, capsys, monkeypatch):
    """Property-based: whatever text goes where a value goes, the command answers, or fails with a documented exit
    code (2 bad input, 3 not found) and no traceback, and the registry is unchanged."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    invoke = in_process(f"chdb://{warehouse_path}?database={labelled.database}", capsys, monkeypatch)
    registry = labelled.command("SELECT count() FROM ml_model_registry")
    value = st.one_of(st.sampled_from(VALUES), st.text(max_size=40), st.dates().map(str), st.uuids().map(str))

    @settings(max_examples=int(os.environ.get("OWNLENS_CLI_EXAMPLES", "60")), deadline=None, derandomize="OWNLENS_CLI_EXAMPLES" not in os.environ, suppress_health_check=list(HealthCheck))
    @given(command=st.sampled_from(range(len(COMMANDS))), v=value, w=value)
    def check(command, v, w):
        args = COMMANDS[command](v, w)
        done = invoke(args)
        allowed = (0, 1, 2, 3) if args[:2] == ["features", "quality"] else (0, 2, 3)  # quality: 1 is a failed check
        assert done.returncode in allowed, (args, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)

    check()
    assert labelled.command("SELECT count() FROM ml_model_registry") == registry


def test_init_names_a_table_that_differs_from_the_contract(make_db, warehouse_path, capsys, monkeypatch):
    from ownlens.ml.errors import InvalidInput

    monkeypatch.setenv("COLUMNS", "400")
    client = make_db(init=False)
    client.command("CREATE TABLE brands (brand_id String, company_id UUID, brand_name String, brand_code String, "
                   "primary_country_code String, is_premium UInt8, created_at DateTime64(0, 'UTC')) ENGINE = MergeTree ORDER BY brand_id")
    result = in_process(f"chdb://{warehouse_path}?database={client.database}", capsys, monkeypatch)(["init"])
    assert result.returncode == InvalidInput.exit_code
    assert "brands.brand_id is String; the contract says UUID" in " ".join(result.stderr.split()), result.stderr


def test_a_server_install_without_the_extras_says_what_to_install_and_writes_reports_without_figures(labelled, trained, tmp_path, monkeypatch):
    """`pip install ownlens` without [embedded] or [reports]: the embedded DSN and the exploration report name the
    extra they need; training and drift reports are written without their figures."""
    from ownlens.ml.data.exploration import explore
    from ownlens.ml.errors import InvalidInput
    from ownlens.ml.models import get
    from ownlens.ml.models.reports import write_report
    from ownlens.ml.warehouse import connect

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` meets where it is not installed
    page = write_report(get("churn"), trained["churn"], tmp_path / "report").read_text()
    assert "roc_auc" in page and "<img" not in page and "pip install 'ownlens[reports]'" in page
    with pytest.raises(InvalidInput, match=r"need matplotlib: pip install 'ownlens\[reports\]'"):
        explore(labelled, tmp_path / "exploration")
    monkeypatch.setitem(sys.modules, "chdb", None)
    with pytest.raises(InvalidInput, match=r"the embedded warehouse needs chDB.*pip install 'ownlens\[embedded\]'"):
        connect(f"chdb://{tmp_path}/elsewhere")
