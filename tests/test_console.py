"""The web console at /ui: every page in a real headless browser (Debian's chromium through Playwright) against the
API under uvicorn on a small simulation, with API keys required; plus the error pages over HTTP."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import FEATURE_DATES, copy_of, serving
from fastapi.testclient import TestClient

from ownlens.ml.models import get
from ownlens.ml.models.runs import train
from ownlens.ml.monitoring import abtest
from ownlens.ml.monitoring.monitor import monitor, stored
from ownlens.ml.pipelines.inference import predict
from ownlens.ml.registry import store
from ownlens.ml.serving.app import create_app
from ownlens.ml.settings import Settings

KEY = "console-key"
PAGES = {  # page -> what its heading says
    "models": ("/ui", "Models"),
    "model": ("/ui/models/churn", "churn"),
    "runs": ("/ui/runs", "Training runs"),
    "predictions": ("/ui/predictions", "Predictions"),
    "monitoring": ("/ui/monitoring", "Monitoring"),
    "abtests": ("/ui/abtests", "A/B tests"),
    "abtest": ("/ui/abtests/churn-console", "A/B test churn-console"),
    "data": ("/ui/data", "Data"),
}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def warehouse(labelled, trained, make_db):
    """A publisher the console has something to show for: predictions stored and monitored, a second churn version
    (a candidate) and an A/B test of it."""
    client = copy_of(labelled, make_db)
    d = FEATURE_DATES[-1]
    for name in ("churn", "engagement", "segmentation", "recommendation"):
        predict(get(name), client, feature_date=d)
    monitor(client, get("churn"), d)
    first = store.resolve(client, "churn")["model_version"]
    second = train(get("churn"), client, seed=5).model.version
    abtest.create(client, "churn-console", "churn", first, second, 0.5, start=FEATURE_DATES[0])
    return client


@pytest.fixture(scope="module")
def server(warehouse):
    with serving(create_app(Settings(api_keys=KEY), warehouse)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the console's browser tests need: pip install playwright")
    executable = chromium()
    if executable is None:
        pytest.skip("the console's browser tests need Debian's chromium: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    """A signed-in page that records console errors and refuses (and records) every request leaving the machine."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    errors, outside = [], []

    def route(r):
        if r.request.url.startswith(server) or r.request.url.startswith("data:"):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    tab = context.new_page()
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{server}/ui")
    assert tab.url.startswith(f"{server}/ui/login")  # keys are required: the console asks for one first
    tab.fill("input[name=key]", "not-the-key")
    tab.click("button[type=submit]")
    assert "not one this server accepts" in tab.inner_text("main")
    assert errors == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    errors.clear()
    tab.fill("input[name=key]", KEY)
    tab.click("button[type=submit]")
    assert tab.url == f"{server}/ui"
    tab.errors, tab.outside = errors, outside
    yield tab
    context.close()


def test_every_page_loads_without_errors_or_requests_leaving_the_machine(page, server):
    shots = os.environ.get("OWNLENS_CONSOLE_SCREENSHOTS")  # set to a folder to refresh docs/console/
    for name, (path, heading) in PAGES.items():
        response = page.goto(f"{server}{path}")
        assert response.status == 200, (path, page.inner_text("main")[:300])
        assert page.inner_text("h1").startswith(heading), path
        if shots:
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)
    assert page.errors == [] and page.outside == []
    models = page.goto(f"{server}/ui") and page.inner_text("#models")
    for name in ("churn", "segmentation", "recommendation", "article_performance"):
        assert name in models
    assert "0.8" in models or "0.7" in models  # churn's AUC and the oracle's are shown beside each other


def test_a_promotion_in_the_console_shows_in_the_registry(page, server, warehouse):
    before = store.resolve(warehouse, "churn")["model_version"]
    candidate = next(v for v in store.versions(warehouse, "churn").itertuples() if v.stage != "production").model_version
    page.goto(f"{server}/ui/models/churn")
    page.click(f"tr[data-version='{candidate}'] a.promote")
    assert f"Promote churn {candidate} to production?" in page.inner_text("h1")
    assert before in page.inner_text("main")  # the confirmation says which version is archived
    page.click("#confirm")
    assert f"churn {candidate} is now production" in page.inner_text(".flash")
    assert store.resolve(warehouse, "churn")["model_version"] == candidate
    assert "production" in page.inner_text(f"tr[data-version='{candidate}']")
    assert candidate in page.inner_text("#history").splitlines()[1]  # the newest stage change, at the top
    page.click("#rollback")
    page.click("#confirm")
    assert store.resolve(warehouse, "churn")["model_version"] == before
    assert page.errors == [] and page.outside == []


def test_a_user_lookup_shows_that_users_prediction(page, server, warehouse):
    user, value = warehouse.query(
        "SELECT entity_id, prediction_value FROM ml_model_predictions WHERE model_name = 'churn' LIMIT 1").result_rows[0]
    page.goto(f"{server}/ui/predictions")
    page.fill("#lookup input[name=user_id]", user)
    page.click("#lookup button")
    assert page.inner_text("h1") == f"User {user}"
    stored_row = next(line for line in page.inner_text("#stored").splitlines() if line.startswith("churn"))
    assert f"{value:.4f}" in stored_row
    assert "churn" in page.inner_text("#live") and "churn_probability" in page.inner_text("#live")
    assert "recency_score" in page.inner_text("#features")
    assert page.errors == [] and page.outside == []


def test_drift_and_ab_readout_pages(page, server, warehouse):
    d = FEATURE_DATES[-1]
    page.goto(f"{server}/ui/models/churn")
    page.click(f"#drift a[href$='/drift/{d}']")
    body = page.inner_text("body")
    assert body.startswith("Drift report: churn") and f"current {d}" in body
    assert all(column.name in body for column in stored(warehouse, get("churn"), d).drift)
    page.goto(f"{server}/ui/abtests/churn-console")
    verdict = page.inner_text("#verdict")
    assert verdict == abtest.analyse(warehouse, "churn-console")["test"]["verdict"]
    assert page.errors == [] and page.outside == []


def test_docs_render_offline_in_the_browser(page, server):
    page.goto(f"{server}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "OwnLens ML" in page.inner_text(".swagger-ui .info .title")
    page.goto(f"{server}/redoc")
    page.wait_for_selector("h1", timeout=15_000)
    assert page.errors == [] and page.outside == [], (page.errors, page.outside)


def test_console_errors_are_pages_and_keys_are_required(warehouse):
    with TestClient(create_app(Settings(api_keys=KEY), warehouse), follow_redirects=False) as http:
        assert http.get("/ui").status_code == 303 and http.get("/ui").headers["location"] == "/ui/login?next=/ui"
        assert http.get("/ui/static/console.css").status_code == 200  # the stylesheet is open, like /docs' assets
        assert http.post("/ui/models/churn/rollback").status_code == 401  # an action without a key is refused
        signed = {"X-API-Key": KEY}
        unknown = http.get("/ui/models/nope", headers=signed)
        assert unknown.status_code == 404 and "unknown model 'nope'" in html.unescape(unknown.text) and "<html" in unknown.text
        bad_date = http.get("/ui/models/churn?day=yesterday", headers=signed)
        assert bad_date.status_code == 422 and "is not a date" in bad_date.text
        assert http.get("/ui/users/not-a-uuid", headers=signed).status_code == 422
        assert http.get("/ui/models/churn/drift/2020-01-01", headers=signed).status_code == 404
        foreign = http.post("/ui/models/churn/rollback", headers={**signed, "origin": "https://evil.example"})
        assert foreign.status_code == 422 and "another site" in foreign.text
        assert http.post("/ui/models/churn/promote", headers=signed).status_code == 422  # no version: nothing changes


def test_a_stored_monitoring_report_reads_back_as_written(warehouse):
    d = FEATURE_DATES[-1]
    written = monitor(warehouse, get("churn"), d)
    read = stored(warehouse, get("churn"), d)
    assert [(x.name, x.status, round(x.size, 9) if x.size == x.size else None) for x in read.drift] == \
        [(x.name, x.status, round(x.size, 9) if x.size == x.size else None) for x in sorted(written.drift, key=lambda x: x.name)]
    assert read.alerts == [a for a in written.alerts if a in read.alerts] and len(read.alerts) == len(written.alerts)
    assert read.references == written.references


def test_pages_name_no_outside_address(warehouse):
    with TestClient(create_app(Settings(), warehouse)) as http:
        for path, _ in PAGES.values():
            html = http.get(path).text
            assert not re.search(r"(src|href)=['\"]https?://", html), path


def test_metrics_follow_prometheus_conventions_and_feed_the_dashboard(warehouse):
    import json
    from datetime import datetime, timedelta, timezone

    watermark = datetime.now(timezone.utc) - timedelta(minutes=2)
    warehouse.insert("ml_inference_watermarks", [["console-test", "churn", watermark, watermark]],
                     column_names=["worker", "model_name", "watermark", "updated_at"])
    user = warehouse.query("SELECT entity_id FROM ml_model_predictions WHERE model_name = 'churn' LIMIT 1").result_rows[0][0]
    with TestClient(create_app(Settings(), warehouse)) as http:
        assert http.get(f"/predict/churn/{user}").status_code == 200
        text = http.get("/metrics").text
    alerts = warehouse.command("SELECT countIf(status = 'alert') FROM ml_model_monitoring WHERE model_name = 'churn' AND "
                               "monitoring_date = (SELECT max(monitoring_date) FROM ml_model_monitoring WHERE model_name = 'churn')")
    assert f'ownlens_drift_alerts{{model="churn"}} {float(alerts)}' in text
    compared = warehouse.query(
        "SELECT if(monitor_type = 'prediction_drift', 'prediction', feature_name), metric_name FROM ml_model_monitoring "
        "WHERE model_name = 'churn' AND monitor_type != 'performance' AND isFinite(metric_value) AND monitoring_date = "
        "(SELECT max(monitoring_date) FROM ml_model_monitoring WHERE model_name = 'churn')").result_rows
    for column, statistic in compared:  # every column compared on the latest date, none skipped
        assert f'ownlens_drift{{column="{column}",model="churn",statistic="{statistic}"}}' in text
    assert 'ownlens_drift{column="active_days",model="churn"' not in text or ("active_days", "wasserstein") in compared
    assert "ownlens_warehouse_up 1.0" in text and "process_resident_memory_bytes" in text and "python_gc_objects_collected_total" in text
    lag = float(re.search(r'ownlens_realtime_worker_lag_seconds\{model="churn",worker="console-test"\} ([0-9.e+]+)', text).group(1))
    assert 110 < lag < 600
    assert 'ownlens_http_request_duration_seconds_bucket{le="0.002",method="GET",route="/predict/churn/{user_id}",status="200"}' in text
    exported = set(re.findall(r"^# TYPE (\w+) ", text, flags=re.M))
    root = Path(__file__).parent.parent / "deploy"
    dashboard = json.loads((root / "grafana" / "ownlens-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += re.findall(r"expr: (.+)", (root / "prometheus" / "ownlens-rules.yml").read_text())
    used = {m for e in exprs for m in re.findall(r"\b((?:ownlens|process|python)_[a-z_]+)\b", e)}
    base = {re.sub(r"_(bucket|count|sum|total)$", "", m) for m in used}
    assert base <= {re.sub(r"_total$", "", m) for m in exported}, base - exported  # every series they read is exported
