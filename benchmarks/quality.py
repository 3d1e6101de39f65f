"""Model quality on a simulation: each model's algorithm next to its baselines and the oracle, same test rows.

Simulates a publisher (default: the demo's 5,000 users over 90 days), builds the demo's feature dates, trains
on the dates whose labels were complete 30 days before the latest labelled one and tests on that one.

    python benchmarks/quality.py                       # the default (demo) simulation
    python benchmarks/quality.py --users 40000 --days 90 --out benchmarks/results/quality-40k.json
    python benchmarks/quality.py --users 40000 --days 90 --models segmentation,recommendation,ad_placement

Task models (segmentation, recommendation, ad placement) report their own metrics and oracle on a later date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

from ownlens.ml import schema
from ownlens.ml.features.build import build_features, data_range
from ownlens.ml.models import get, names
from ownlens.ml.models.training import compare_baselines
from ownlens.ml.pipelines.run import plan_feature_dates
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.warehouse import connect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=5_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--models", default=",".join(names()), help="comma-separated model names")
    p.add_argument("--out")
    args = p.parse_args()
    path = tempfile.mkdtemp(prefix="ownlens-quality-")
    os.environ.setdefault("OWNLENS_HOME", path)
    try:
        client = connect(f"chdb://{path}/warehouse")
        schema.apply(client)
        simulate(client, SimulationConfig(users=args.users, days=args.days, seed=args.seed))
        first, last = data_range(client)
        for d in plan_feature_dates(first, last)[:-1]:
            build_features(client, d)
        results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
                   "simulation": {"users": args.users, "days": args.days, "seed": args.seed}, "models": {}}
        wanted = args.models.split(",")
        for name in [n for n in wanted if "algorithm" not in get(n).options]:  # no baselines to swap in
            t = time.perf_counter()
            r = get(name).train(client)
            row = {"metrics": r.metrics, "oracle": r.oracle_metrics, "split": r.split, "seconds": round(time.perf_counter() - t, 1)}
            results["models"][name] = row
            print(name, json.dumps(row, default=str), flush=True)
        for name, spec in [(n, get(n)) for n in wanted if "algorithm" in get(n).options]:
            r = compare_baselines(spec, client)
            key = spec.primary_metric
            row = {algo: round(m[key], 4) for algo, m in r["results"].items()}
            row["oracle"] = round(r["oracle"][key], 4) if r["oracle"] else None
            row.update(metric=key, test_rows=r["split"]["test_rows"], train_rows=r["split"]["train_rows"], test_date=r["split"].get("test_date"))
            results["models"][name] = {"summary": row, "detail": r}
            print(name, json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(results, fh, indent=2, default=str)
    finally:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
