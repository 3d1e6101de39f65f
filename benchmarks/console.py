"""Console benchmark: time to first render of each /ui page on a large warehouse (issue 18: under 1 s at 1M users).

Prepares the warehouse once (simulation, features for four dates, churn, engagement and conversion trained and
scored on two dates, churn's drift monitored, a second churn version in an A/B test), then serves the API from this
process and loads every page in headless chromium (Playwright): first contentful paint of the first (cold) load and
of three warm loads, and the server's time for the HTML alone (time to first byte).

    python benchmarks/console.py --users 1000000 --path /tmp/ownlens-console-1m --out benchmarks/results/console-1m.json
    python benchmarks/console.py --users 20000 --path /tmp/ownlens-console-20k      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import threading
import time
from datetime import date

DATES = [date(2026, 1, 21), date(2026, 1, 28), date(2026, 2, 4), date(2026, 3, 6)]  # 90-day simulation from 2026-01-05
MODELS = ("churn", "engagement", "conversion")


def prepare(client, users: int) -> dict:
    from ownlens.ml import schema
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.features.build import build_features
    from ownlens.ml.models import get
    from ownlens.ml.models.runs import train
    from ownlens.ml.monitoring import abtest
    from ownlens.ml.monitoring.monitor import monitor
    from ownlens.ml.pipelines.inference import predict
    from ownlens.ml.registry import store
    from ownlens.ml.simulation import SimulationConfig, simulate

    timings = {}

    def timed(step, fn):
        started = time.perf_counter()
        out = fn()
        timings[step] = round(time.perf_counter() - started, 1)
        print(f"{step}: {timings[step]} s", flush=True)
        return out

    schema.apply(client)
    if not int(client.command("SELECT count() FROM customer_sessions")):
        timed("simulate", lambda: simulate(client, SimulationConfig(users=users, days=90)))
        reload_reference_dictionaries(client)
    built = {d for (d,) in client.query("SELECT DISTINCT feature_date FROM customer_user_features").result_rows}
    for d in DATES:
        if d not in built:
            timed(f"features {d}", lambda d=d: build_features(client, d))
    for name in MODELS:
        if not store.versions(client, name).empty:
            continue
        result = timed(f"train {name}", lambda name=name: train(get(name), client, train_dates=DATES[:-1], test_date=DATES[-1]))
        store.promote(client, name, result.model.version)
        for d in (DATES[-2], DATES[-1]):
            timed(f"predict {name} {d}", lambda name=name, d=d: predict(get(name), client, feature_date=d))
        timed(f"monitor {name}", lambda name=name: monitor(client, get(name), DATES[-1]))
    if len(store.versions(client, "churn")) < 2:
        second = timed("train churn again", lambda: train(get("churn"), client, train_dates=DATES[:-1], test_date=DATES[-1], seed=5))
        first = store.resolve(client, "churn")["model_version"]
        abtest.create(client, "churn-bench", "churn", first, second.model.version, 0.5, start=DATES[-2])
    return timings


def pages(client) -> dict[str, str]:
    user = client.query("SELECT entity_id FROM ml_model_predictions WHERE model_name = 'churn' LIMIT 1").result_rows[0][0]
    return {"models": "/ui", "model (churn)": "/ui/models/churn", "runs": "/ui/runs", "predictions": "/ui/predictions",
            "user lookup": f"/ui/users/{user}", "monitoring": "/ui/monitoring", "A/B tests": "/ui/abtests",
            "A/B test readout (live)": "/ui/abtests/churn-bench", "data": "/ui/data",
            "drift report (first: rendered)": f"/ui/models/churn/drift/{DATES[-1]}"}


def measure(client, repeats: int) -> dict:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from ownlens.ml.serving.app import create_app
    from ownlens.ml.settings import Settings

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(), client), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    time.sleep(5)  # the start-up warm-up (models, dictionaries) is not what a page costs
    results = {}
    paint = "() => { const p = performance.getEntriesByName('first-contentful-paint')[0]; const n = performance.getEntriesByType('navigation')[0]; return [p ? p.startTime : null, n.responseStart - n.requestStart]; }"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=["--no-sandbox"])
        for name, path in pages(client).items():
            runs = []
            for _ in range(1 + repeats):
                tab = browser.new_page()
                started = time.perf_counter()
                tab.goto(f"http://127.0.0.1:{port}{path}")
                fcp, ttfb = tab.evaluate(paint)
                runs.append({"fcp_ms": round(fcp or (time.perf_counter() - started) * 1000), "server_ms": round(ttfb)})
                tab.close()
            results[name] = {"first": runs[0], "warm_fcp_ms": statistics.median(r["fcp_ms"] for r in runs[1:]),
                             "warm_server_ms": statistics.median(r["server_ms"] for r in runs[1:])}
            print(name, results[name], flush=True)
        browser.close()
    server.should_exit = True
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--path", required=True, help="warehouse directory (kept: a second run only measures)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    os.environ.setdefault("OWNLENS_HOME", os.path.join(args.path, "home"))
    from ownlens.ml.warehouse import connect

    client = connect(f"chdb://{os.path.join(args.path, 'warehouse')}")
    prepared = prepare(client, args.users)
    users = int(client.command("SELECT count() FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": DATES[-1]}))
    out = {"date": str(date.today()), "machine": f"{platform.machine()}, {os.cpu_count()} cores", "users": args.users,
           "users_with_features_on_test_date": users, "prepare_s": prepared, "pages": measure(client, args.repeats)}
    print(json.dumps(out, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
