"""The REST API in-process (FastAPI TestClient) over a real chDB warehouse with trained models."""

from __future__ import annotations

import json
import time

import pytest
from conftest import FEATURE_DATES
from fastapi.testclient import TestClient

from ownlens.ml.models.customer.churn import CHURN
from ownlens.ml.models.runs import train
from ownlens.ml.registry import store
from ownlens.ml.serving import served as served_models
from ownlens.ml.serving.app import MAX_BATCH, create_app
from ownlens.ml.settings import Settings

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def api(labelled, trained):
    first = trained["churn"]
    store.promote(labelled, "churn", first.model.version)
    with TestClient(create_app(Settings(api_keys=None), labelled)) as client:
        yield client, labelled, first.model.version


@pytest.fixture(scope="module")
def user(api):
    _, client, _ = api
    return client.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1",
                        parameters={"d": FEATURE_DATES[1]}).result_rows[0][0]


def test_health_ready_and_models(api):
    http, _, version = api
    assert http.get("/health").json()["status"] == "ok"
    ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    listed = http.get("/models").json()
    assert any(m["model"] == "churn" and m["version"] == version and m["stage"] == "production" for m in listed)
    assert http.get("/models/churn").json()["version"] == version
    assert http.get("/models/nope").status_code == 404
    assert "/predict/churn" in http.get("/openapi.json").json()["paths"]


def test_predict_users_with_unknowns(api, user):
    http, _, version = api
    response = http.post("/predict/churn", json={"user_ids": [user, UNKNOWN]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == version and body["unknown"] == [UNKNOWN]
    [row] = body["predictions"]
    assert row["user_id"] == user and 0 <= row["churn_probability"] <= 1 and row["churn_risk_level"] in {"low", "medium", "high"}
    single = http.get(f"/predict/churn/{user}")
    assert single.status_code == 200 and single.json()["predictions"][0]["churn_probability"] == pytest.approx(row["churn_probability"])
    bad_date = http.get(f"/predict/churn/{user}", params={"feature_date": "19/02/2026"})
    assert bad_date.status_code == 422 and "feature_date" in bad_date.json()["detail"]
    dated = http.get(f"/predict/churn/{user}", params={"feature_date": str(FEATURE_DATES[1])})
    assert dated.status_code == 200 and dated.json()["predictions"][0]["feature_date"] == str(FEATURE_DATES[1])
    missing = http.get(f"/predict/churn/{UNKNOWN}")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound" and "no features" in missing.json()["detail"]


@pytest.mark.parametrize("request_kwargs, status, fragment", [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ({"json": {"user_ids": 5}}, 422, "list"),
    ({"json": {"user_ids": ["not-a-uuid"]}}, 422, "not a valid id"),
    ({"json": {}}, 422, "user_ids: Field required"),
    ({"json": {"user_ids": []}}, 422, "at least 1"),
    ({"json": {"user_ids": [UNKNOWN] * (MAX_BATCH + 1)}}, 422, f"at most {MAX_BATCH}"),
    ({"json": {"user_ids": [UNKNOWN], "pairs": [{"user_id": UNKNOWN, "article_id": UNKNOWN}]}}, 422, "pairs: Extra inputs are not permitted"),
    ({"json": {"user_ids": [UNKNOWN], "options": {"k": 5}}}, 422, "options"),
])
def test_bad_requests_get_json_errors(api, request_kwargs, status, fragment):
    http, _, _ = api
    response = http.post("/predict/churn", **request_kwargs)
    assert response.status_code == status and fragment in response.text
    assert response.headers["content-type"].startswith("application/json")
    assert http.get("/health").status_code == 200  # still up


def test_unknown_model_is_404(api, user):
    http, _, _ = api
    response = http.post("/predict/nope", json={"user_ids": [user]})
    assert response.status_code == 404 and response.json() == {"error": "NotFound", "detail": "no route POST /predict/nope: see /docs"}


def test_promotion_is_picked_up_without_restart(api, user, monkeypatch):
    http, labelled, first_version = api
    second = train(CHURN, labelled)
    store.promote(labelled, "churn", second.model.version)
    monkeypatch.setattr(served_models, "REGISTRY_TTL_S", 0.0)
    assert http.post("/predict/churn", json={"user_ids": [user]}).json()["model_version"] == second.model.version
    store.rollback(labelled, "churn")
    assert http.post("/predict/churn", json={"user_ids": [user]}).json()["model_version"] == first_version
    monkeypatch.setattr(served_models, "REGISTRY_TTL_S", 0.05)
    store.promote(labelled, "churn", second.model.version)
    http.get(f"/predict/churn/{user}")  # warm the cache, then the hot path must follow the promotion too
    deadline = time.time() + 15
    while http.get(f"/predict/churn/{user}").json()["model_version"] != second.model.version and time.time() < deadline:
        time.sleep(0.05)
    assert http.get(f"/predict/churn/{user}").json()["model_version"] == second.model.version
    store.rollback(labelled, "churn")
    deadline = time.time() + 15  # leave the server serving the first version again
    while http.get(f"/predict/churn/{user}").json()["model_version"] != first_version and time.time() < deadline:
        time.sleep(0.05)


def test_an_idle_server_checks_the_registry_with_one_query_a_pass(api, monkeypatch):
    _, labelled, first_version = api
    models = served_models.ServedModels(labelled)
    for name in ("churn", "engagement", "conversion"):
        models.server(name)
    models.refresh()  # the first pass checks every model
    import threading

    calls, me, query = [], threading.get_ident(), labelled.query  # (the API's own refresher shares the client)
    monkeypatch.setattr(labelled, "query", lambda *a, **k: (threading.get_ident() == me and calls.append(a[0])) or query(*a, **k))
    models.refresh()
    assert calls == [served_models.REGISTRY_STAMP]  # nothing changed: one small query, the versions marked current
    assert models.current("churn") is not None
    other = next(v for v in store.versions(labelled, "churn")["model_version"] if v != first_version)
    store.promote(labelled, "churn", other)
    try:
        calls.clear()
        models.refresh()
        assert len(calls) > 1 and models.server("churn").model.version == other  # a change: every model re-checked
    finally:
        store.promote(labelled, "churn", first_version)


def test_metrics_and_api_keys(api, user, labelled):
    http, _, _ = api
    http.post("/predict/churn", json={"user_ids": [user]})
    text = http.get("/metrics").text
    assert "ownlens_predictions_total" in text and "ownlens_http_request_duration_seconds_bucket" in text and 'model="churn"' in text
    with TestClient(create_app(Settings(api_keys="k1,k2"), labelled)) as locked:
        assert locked.post("/predict/churn", json={"user_ids": [user]}).status_code == 401
        assert locked.post("/predict/churn", json={"user_ids": [user]}, headers={"X-API-Key": "k2"}).status_code == 200
        assert locked.get(f"/predict/churn/{user}").status_code == 401  # the hot GET checks keys too
        assert locked.get(f"/predict/churn/{user}", headers={"X-API-Key": "k1"}).status_code == 200
        assert locked.get("/health").status_code == 200


def test_realtime_worker_runs_inside_the_server(api, labelled):
    import time

    from ownlens.ml.serving import worker

    with TestClient(create_app(Settings(), labelled, realtime=["churn"], realtime_interval_s=0.1)) as http:
        deadline = time.time() + 20
        while worker.watermark(labelled, "api-churn") == worker.EPOCH and time.time() < deadline:
            time.sleep(0.1)
        assert http.get("/health").status_code == 200
    assert worker.watermark(labelled, "api-churn") > worker.EPOCH


def test_warm_requests_are_answered_from_the_cache_alike(api, user):
    """The second request for a user takes the no-I/O path; its answer equals the first, read from the warehouse."""
    http, _, version = api
    cold = http.post("/predict/churn", json={"user_ids": [user]}).json()["predictions"][0]
    scorer = http.app.state.models.current("churn")
    assert scorer is not None and scorer.cached_record(user) is not None  # the cache now holds the user
    warm = http.get(f"/predict/churn/{user}")
    assert warm.status_code == 200 and warm.headers["content-type"] == "application/json"
    row = warm.json()["predictions"][0]
    assert row.pop("churn_probability") == pytest.approx(cold.pop("churn_probability"), rel=1e-6)
    assert row == cold and row["model_version"] == version and len(row["feature_date"]) == 10


def test_scheduled_monitoring_runs_inside_the_server(api, labelled):
    import time

    labelled.command("DELETE FROM ml_model_monitoring WHERE model_name = 'churn'")
    with TestClient(create_app(Settings(), labelled, monitor_interval_s=0.1)) as http:
        deadline = time.time() + 30
        while not int(labelled.command("SELECT count() FROM ml_model_monitoring WHERE model_name = 'churn'")) and time.time() < deadline:
            time.sleep(0.2)
        assert http.get("/health").status_code == 200
    assert int(labelled.command("SELECT count() FROM ml_model_monitoring WHERE model_name = 'churn' AND monitor_type = 'feature_drift'")) > 0


def test_warehouse_gone_mid_flight_gives_503_and_the_server_stays_up(api, labelled, warehouse_path):
    from ownlens.ml.warehouse import connect, embedded_dsn

    own = connect(embedded_dsn(warehouse_path, labelled.database))  # a client of its own, to lose on purpose
    users = [u for (u,) in labelled.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 2",
                                          parameters={"d": FEATURE_DATES[1]}).result_rows]
    with TestClient(create_app(Settings(api_keys=None), own), raise_server_exceptions=False) as http:
        assert http.get(f"/predict/churn/{users[0]}").status_code == 200
        own.close()  # the warehouse goes away
        cold = http.get(f"/predict/churn/{users[1]}")
        assert cold.status_code == 503 and cold.json()["error"] == "WarehouseUnavailable"
        assert http.post("/predict/churn", json={"user_ids": users}).status_code == 503
        assert http.get("/ready").status_code == 503 and http.get("/health").status_code == 200


def test_a_running_ab_test_routes_each_user_to_its_arm(api, labelled, monkeypatch):
    from ownlens.ml.monitoring import abtest

    _, _, production = api
    challenger = train(CHURN, labelled, algorithm="logistic", params={}).model.version
    test = abtest.create(labelled, "api-ab", "churn", production, challenger, split=0.5)
    monkeypatch.setattr(served_models, "REGISTRY_TTL_S", 0.0)
    users = [u for (u,) in labelled.query("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} "
                                          "ORDER BY user_id LIMIT 40", parameters={"d": FEATURE_DATES[1]}).result_rows]
    expected = {u: challenger if abtest.variant(test.test_id, u, 0.5) == "B" else production for u in users}
    assert set(expected.values()) == {production, challenger}
    with TestClient(create_app(Settings(api_keys=None), labelled)) as http:
        body = http.post("/predict/churn", json={"user_ids": users}).json()
        assert [r["user_id"] for r in body["predictions"]] == users  # the order asked, across arms
        assert {r["user_id"]: r["model_version"] for r in body["predictions"]} == expected
        assert body["model_version"] == production
        b_user = next(u for u in users if expected[u] == challenger)
        for _ in range(2):  # cold, then from the cache on the event loop: the same arm
            body = http.get(f"/predict/churn/{b_user}").json()
            assert body["predictions"][0]["model_version"] == challenger and body["model_version"] == production
        assert "A/B api-ab" in http.get("/ready").json()["detail"]["models_loaded"]["churn"]
        abtest.conclude(labelled, "api-ab")
        body = http.post("/predict/churn", json={"user_ids": users}).json()
        assert {r["model_version"] for r in body["predictions"]} == {production}


def test_click_pairs_through_the_api(api, labelled):
    from ownlens.ml.models.content.click import CLICK

    store.promote(labelled, "click", train(CLICK, labelled).model.version)
    d = FEATURE_DATES[1]
    user, article = labelled.query(
        "SELECT toString(e.user_id), toString(e.article_id) FROM customer_events AS e "
        "WHERE e.event_type = 'article_impression' AND e.event_timestamp >= {d:Date} AND e.user_id IN "
        "(SELECT user_id FROM customer_user_features WHERE feature_date = {d:Date}) LIMIT 1", parameters={"d": d}).result_rows[0]
    missing = "00000000-0000-4000-8000-000000000001"
    http, _, _ = api
    body = http.post("/predict/click", json={"pairs": [{"user_id": user, "article_id": article},
                                                        {"user_id": user, "article_id": missing}],
                                             "feature_date": str(d)}).json()
    [row] = body["predictions"]
    assert (row["user_id"], row["article_id"]) == (user, article) and 0 < row["click_probability"] < 1
    assert body["unknown"] == [[user, missing]]
    assert http.post("/predict/click", json={"user_ids": [user]}).status_code == 422  # pairs, not users


def test_one_route_for_every_model_documented_with_its_types(api, labelled, trained):
    from ownlens.ml.models import get, names

    http, _, _ = api
    schema = http.get("/openapi.json").json()
    for name in names():  # each model's own two routes, with its typed request and response
        title = "".join(p.title() for p in name.split("_"))
        key = get(name).entity[0]  # user_id, or article_id / brand_id for editorial models
        get_op = schema["paths"][f"/predict/{name}/{{{key}}}"]["get"]
        post_op = schema["paths"][f"/predict/{name}"]["post"]
        assert f"{title}Predictions" in json.dumps(get_op["responses"]["200"]) + json.dumps(post_op["responses"]["200"])
        assert f"{title}Request" in json.dumps(post_op["requestBody"])
        params = {p["name"]: p for p in get_op["parameters"]}
        assert params[key]["in"] == "path" and params[key]["schema"] == (
            {"type": "string", "format": "uuid"} if key.endswith("_id") else {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"})
        assert {"401", "404", "413", "422", "500", "503"} <= set(get_op["responses"]) <= {"200", "401", "404", "413", "422", "500", "503"}
    assert schema["paths"]["/predict/click/{user_id}"]["get"]["parameters"][2]["name"] == "article_id"
    assert "ChurnPrediction" in schema["components"]["schemas"]
    # a model that needs more than a user says which field is missing
    user = labelled.command("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1",
                            parameters={"d": FEATURE_DATES[1]})
    missing = http.get(f"/predict/click/{user}")
    assert missing.status_code == 422 and "article_id" in missing.json()["detail"]
    assert http.get("/predict/nope/" + user).status_code == 404
    # the old per-model paths answer with the same records as the one route
    seg = http.get(f"/segments/{user}").json()
    assert seg == http.get(f"/predict/segmentation/{user}").json()["predictions"][0]


def test_dependencies_can_be_overridden(labelled, trained):
    """Routes take the warehouse, the served models and the settings as dependencies a test (or an embedding
    application) can replace, the hot prediction route included."""
    from ownlens.ml.serving import deps

    user = labelled.command("SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} LIMIT 1",
                            parameters={"d": FEATURE_DATES[1]})
    app = create_app(Settings(api_keys=None), labelled)
    app.dependency_overrides[deps.settings] = lambda request: Settings(api_keys="only-this")
    with TestClient(app) as http:
        assert http.get(f"/predict/churn/{user}").status_code == 401
        assert http.get(f"/predict/churn/{user}", headers={"X-API-Key": "only-this"}).status_code == 200
        assert http.get("/models", headers={"X-API-Key": "only-this"}).status_code == 200


def test_an_artifact_that_fails_its_integrity_check_is_a_server_error_and_not_ready(labelled, trained, user):
    version = trained["engagement"].model.version
    store.promote(labelled, "engagement", version)
    path = store.get(labelled, "engagement", version)["artifact_uri"]
    data = open(path, "rb").read()

    def ready_status(http, wanted):
        for _ in range(100):
            ready = http.get("/ready")
            if ready.json()["status"] == wanted:
                return ready
            time.sleep(0.1)
        raise AssertionError(ready.text)

    try:
        open(path, "wb").write(data[:-10] + bytes(10))
        with TestClient(create_app(Settings(api_keys=None), labelled)) as http:
            ready = ready_status(http, "model-not-loadable")  # found by the start-up warm-up, before any request
            assert ready.status_code == 503 and "sha256 mismatch" in ready.json()["detail"]["not_loadable"]["engagement"]
            got = http.get(f"/predict/engagement/{user}")
            assert got.status_code == 500 and got.json()["error"] == "CorruptArtifact" and path in got.json()["detail"]
            assert http.get(f"/predict/churn/{user}").status_code == 200  # the other models keep answering
            open(path, "wb").write(data)  # restored: picked up by the registry refresh, without a restart
            assert ready_status(http, "ready").status_code == 200
            assert http.get(f"/predict/engagement/{user}").status_code == 200
    finally:
        open(path, "wb").write(data)


@pytest.fixture(scope="module")
def live(labelled, trained):
    """The API under uvicorn on a loopback port, keys required: what a client's socket sees."""
    import socket
    import threading

    import uvicorn

    store.promote(labelled, "churn", trained["churn"].model.version)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(api_keys="k1", max_body_bytes=4096), labelled),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=30)


def _raw(port: int, head: str, body_chunks=()) -> tuple[int, dict]:
    """Send a request by hand (headers, then any body chunks the server still takes); its status and JSON answer."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode())
        for chunk in body_chunks:
            try:
                conn.sendall(chunk)
            except OSError:  # the server answered and closed: the rest is never read
                break
        data = b""
        while True:
            header_end = data.find(b"\r\n\r\n")
            if header_end >= 0:
                lines = data[:header_end].decode().split("\r\n")
                length = int(next((v for k, v in (line.split(": ", 1) for line in lines[1:]) if k.lower() == "content-length"), 0))
                if len(data) >= header_end + 4 + length:
                    return int(lines[0].split()[1]), json.loads(data[header_end + 4:header_end + 4 + length] or b"{}")
            more = conn.recv(65536)
            if not more:
                raise AssertionError(f"connection closed after {data!r}")
            data += more


def test_the_key_is_checked_before_the_body_and_the_body_has_a_limit(live, user):
    post = "POST /predict/churn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # 100 MB announced without a key: refused at once, before a byte of it is read
    status, body = _raw(live, post + "Content-Length: 100000000\r\n\r\n")
    assert status == 401 and body["error"] == "Unauthorized"
    # with the key, the same announcement is over the limit: refused unread
    status, body = _raw(live, post + "X-API-Key: k1\r\nContent-Length: 100000000\r\n\r\n")
    assert status == 413 and body["error"] == "TooLarge"
    # a chunked body that announces nothing is read only up to the limit (4 kB here)
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    status, body = _raw(live, post + "X-API-Key: k1\r\nTransfer-Encoding: chunked\r\n\r\n", [chunk, chunk])
    assert status == 413 and "over the limit of 4,096 bytes" in body["detail"]
    # and a body within it is served
    payload = json.dumps({"user_ids": [user]})
    status, body = _raw(live, post + f"X-API-Key: k1\r\nContent-Length: {len(payload)}\r\n\r\n{payload}")
    assert status == 200 and body["predictions"][0]["user_id"] == user


def test_unmatched_paths_share_one_metrics_label_and_errors_share_one_shape(api):
    http, _, _ = api
    for i in range(50):
        got = http.get(f"/no/such/path/{i}")
        assert got.status_code == 404 and set(got.json()) == {"error", "detail"}
    assert http.request("BREW", "/predict/churn").status_code in (404, 405)
    text = http.get("/metrics").text
    assert 'route="(unmatched)"' in text and "/no/such/path" not in text and 'method="OTHER"' in text
    bad = http.post("/predict/churn", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json() == {"error": "InvalidInput", "detail": "body: is not valid JSON"}
    typed = http.post("/predict/churn", json={"user_ids": 5})
    assert typed.status_code == 422 and typed.json()["error"] == "InvalidInput" and typed.json()["detail"].startswith("user_ids:")


def test_docs_and_redoc_load_nothing_from_the_internet(api, labelled):
    import re

    with TestClient(create_app(Settings(api_keys="k1"), labelled)) as locked:  # open without a key, like /openapi.json
        for page in ("/docs", "/redoc"):
            html = locked.get(page)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"]
            assert not re.search(r"(src|href)=['\"]https?://", html.text), page  # every script and style is ours
            assets = re.findall(r"(?:src|href)=['\"](/docs-assets/[^'\"]+)['\"]", html.text)
            assert assets, page
            for asset in assets:
                got = locked.get(asset)
                assert got.status_code == 200 and len(got.content) > 1000, asset
        assert locked.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith(("application/javascript", "text/javascript"))
