"""Segmentation, recommendation and ad placement at scale: train each, then write its batch for the newest date.

Runs on an existing warehouse with features built (e.g. the 1M-user one of benchmarks/foundation.py):

    OWNLENS_HOME=/tmp/ownlens-bench-home python benchmarks/task_models.py /tmp/b1m --out benchmarks/results/task-models-1m.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from ownlens.ml import schema
from ownlens.ml.models import get
from ownlens.ml.warehouse import connect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="the chDB warehouse directory")
    p.add_argument("--out")
    args = p.parse_args()
    client = connect(f"chdb://{args.path}")
    schema.apply(client)
    d = max(x for (x,) in client.query("SELECT DISTINCT feature_date FROM customer_user_features").result_rows)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "scored_date": str(d), "models": {}}
    for name in ("segmentation", "recommendation", "ad_placement"):
        task = get(name)
        t = time.perf_counter()
        result = task.train(client)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        batch = task.predict_batch(client, result.model, d)
        out["models"][name] = {
            "train_s": round(train_s, 1), "batch_s": round(time.perf_counter() - t, 1), "batch": batch,
            "metric": result.metrics.get(task.primary_metric), "oracle": (result.oracle_metrics or {}).get(task.primary_metric),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
        print(name, json.dumps(out["models"][name], default=str), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
