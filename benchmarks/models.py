"""Model benchmarks on a large simulated warehouse: churn training to a registered model, batch scoring
written back, and single-user prediction latency. Each step runs in its own process (own peak memory).

    python benchmarks/models.py --path /tmp/b1m      # a warehouse from benchmarks/foundation.py --path
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date

import numpy as np

TRAIN_DATES = ["2026-01-21", "2026-01-28", "2026-02-04", "2026-03-06"]  # training dates 30+ days before the test date (the last), 90-day simulation


def _client(path):
    from ownlens.ml.warehouse import connect

    return connect(f"chdb://{path}")


def prepare(path: str) -> dict:
    from ownlens.ml import schema
    from ownlens.ml.features.build import build_features

    client = _client(path)
    schema.apply(client)
    built = {}
    for d in TRAIN_DATES:
        labelled = int(client.command("SELECT count() FROM customer_user_labels WHERE feature_date = {d:Date}", parameters={"d": d}))
        vectors = int(client.command("SELECT count() FROM customer_user_feature_vectors WHERE feature_date = {d:Date}", parameters={"d": d}))
        if not labelled or not vectors:
            t = time.perf_counter()
            build_features(client, date.fromisoformat(d))
            built[d] = round(time.perf_counter() - t, 1)
    return {"built_feature_dates_s": built}


def bench_train(path: str) -> dict:
    from ownlens.ml.models.customer.churn import CHURN
    from ownlens.ml.models.runs import train

    client = _client(path)
    t = time.perf_counter()
    result = train(CHURN, client, train_dates=TRAIN_DATES[:-1], test_date=TRAIN_DATES[-1])
    seconds = time.perf_counter() - t
    from ownlens.ml.registry import store

    store.promote(client, "churn", result.model.version)
    return {"seconds": seconds, "version": result.model.version, "train_rows": result.split["train_rows"],
            "test_rows": result.split["test_rows"], "roc_auc": result.metrics["roc_auc"],
            "oracle_roc_auc": result.oracle_metrics["roc_auc"] if result.oracle_metrics else None,
            "timings": result.extra.get("timings")}


def bench_score(path: str) -> dict:
    from ownlens.ml.models.customer.churn import CHURN
    from ownlens.ml.models.rows import encoded_batches
    from ownlens.ml.models.scoring import predict_batch
    from ownlens.ml.models.trained import load

    client = _client(path)
    model = load(client, "churn")
    d = date.fromisoformat(TRAIN_DATES[-1])
    result = predict_batch(CHURN, client, model, d)
    # the parts alone, on the same rows: reading the encoded inputs, and XGBoost on them
    t = time.perf_counter()
    X = np.concatenate([X for _, X in encoded_batches(client, CHURN, d, model.features, model.encoder.vocabularies)])
    result["read_alone_s"] = time.perf_counter() - t
    t = time.perf_counter()
    model.predict_matrix(X)
    result["model_alone_s"] = time.perf_counter() - t
    result["model_alone_rows_per_s"] = round(len(X) / result["model_alone_s"])
    return result


def bench_single(path: str, n: int) -> dict:
    from ownlens.ml.models.customer.churn import ChurnPredictor

    client = _client(path)
    users = [u for (u,) in client.query(
        "SELECT toString(user_id) FROM customer_user_features WHERE feature_date = {d:Date} ORDER BY rand() LIMIT {n:UInt32}",
        parameters={"d": TRAIN_DATES[-1], "n": n}).result_rows]
    predictor = ChurnPredictor(client=client)
    predictor.predict(users[0])
    times = []
    for user in users:
        t = time.perf_counter()
        frame = predictor.predict(user, return_proba=True)
        times.append(time.perf_counter() - t)
        assert len(frame) == 1
    ms = np.array(times) * 1000
    return {"requests": n, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(statistics.mean(ms))}


def _child(argv):
    out = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"step {argv[0]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", required=False, help="warehouse directory with a 90-day simulation")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--out")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        step, path, *rest = args.child
        os.environ.setdefault("OWNLENS_HOME", os.path.join(path, "..", "ownlens-bench-home"))
        result = {"prepare": lambda: prepare(path), "train": lambda: bench_train(path), "score": lambda: bench_score(path),
                  "single": lambda: bench_single(path, int(rest[0]))}[step]()
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result, default=str))
        return
    if not args.path:
        raise SystemExit("--path: a warehouse made by `python benchmarks/foundation.py --path DIR` (1M users, 90 days)")
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "command": " ".join([os.path.basename(sys.executable), *sys.argv])}
    for step, extra in [("prepare", []), ("train", []), ("score", []), ("single", [str(args.requests)])]:
        results[step] = _child([step, args.path, *extra])
        print(step, results[step], flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
