"""The editorial models end to end on a simulated publisher: quality next to the baseline and the oracle, and the time
of each step (article features for a day, training, the daily batches, one live trending lookup).

    python benchmarks/editorial.py --users 20000 --days 60 [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta

from ownlens.ml import schema
from ownlens.ml.data.loaders import reload_reference_dictionaries
from ownlens.ml.features.editorial import build_article_features
from ownlens.ml.models import get
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.warehouse import connect


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    client = connect(f"chdb://{tempfile.mkdtemp(prefix='ownlens-editorial-')}/warehouse")
    schema.apply(client)
    config = SimulationConfig(users=args.users, days=args.days, start=date(2026, 1, 5), seed=args.seed)
    _, t_sim = timed(simulate, client, config)
    reload_reference_dictionaries(client)
    d = config.end - timedelta(days=1)
    report = {"users": args.users, "days": args.days, "seconds": {"simulate": t_sim}}
    report["article_features_rows"], report["seconds"]["article_features_day"] = timed(build_article_features, client, d)
    for name in ("article_performance", "trending"):
        model = get(name)
        result, report["seconds"][f"train_{name}"] = timed(model.train, client, seed=args.seed)
        keep = ("spearman", "top_decile", "r2_", "burst_", "delay", "false_alarms", "bursts", "articles")
        report[name] = {"metrics": {k: round(v, 3) if isinstance(v, float) else v for k, v in result.metrics.items()
                                    if any(s in k for s in keep)},
                        "oracle": {k: round(v, 3) if isinstance(v, float) else v for k, v in (result.oracle_metrics or {}).items()
                                   if any(s in k for s in keep)}}
        summary, report["seconds"][f"predict_{name}_day"] = timed(model.predict_batch, client, result.model, d)
        report[name]["batch_rows"] = summary["rows"]
        if name == "trending":
            brands = [b for (b,) in client.query("SELECT toString(brand_id) FROM brands").result_rows]
            _, report["seconds"]["trending_lookup_24h_one_brand"] = timed(model.server(client, result.model).records, brands[:1], d, hours=24)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
