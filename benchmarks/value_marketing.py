"""Seed 004's attribution, customer value, health, expansion and lead models through the product, on simulations of
several sizes (the metrics next to the oracle and the baselines, and the times; conversion beside lead scoring, on
the same readers), and the lifetime-value estimator on 1M customers.

    python benchmarks/value_marketing.py [--users 20000 100000] [--customers 1000000] [--json]

Results go to benchmarks/results/value_marketing.jsonl (one line per run).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ownlens.ml import schema
from ownlens.ml.features.build import build_features
from ownlens.ml.models import get
from ownlens.ml.models.customer.lifetime import BuyTillYouDie
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.warehouse import connect, embedded_dsn

RESULTS = Path(__file__).parent / "results" / "value_marketing.jsonl"
# weekly feature dates over the 90 simulated days from 2026-01-05 (the subscriber and lead models' rows)
FEATURE_DATES = [date(2026, 1, 19) + timedelta(days=7 * k) for k in range(11)]


def simulated(users: int) -> dict:
    client = connect(embedded_dsn(tempfile.mkdtemp(prefix="ownlens-bench-"), "bench"))
    schema.apply(client)
    t0 = time.perf_counter()
    simulate(client, SimulationConfig(users=users, days=90, start=date(2026, 1, 5), seed=7))
    out = {"users": users, "simulate_s": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    for d in FEATURE_DATES:
        build_features(client, d)
    out["features_s"] = round(time.perf_counter() - t0, 1)
    for name in ("attribution", "clv", "health", "expansion", "lead", "conversion"):
        model = get(name)
        t0 = time.perf_counter()
        result = model.train(client)
        trained = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = model.predict_batch(client, result.model, None if name in ("attribution", "clv") else FEATURE_DATES[-1])
        out[name] = {"train_s": round(trained, 2), "batch_s": round(time.perf_counter() - t0, 2), "rows": batch["rows"],
                     "metrics": result.metrics, "oracle": result.oracle_metrics, "split": result.split,
                     "bands": result.extra.get("bands")}
    return out


def synthetic_customers(n: int, seed: int = 0) -> np.ndarray:
    """BG/NBD customers (r 0.5, alpha 8.6 weeks, a 0.8, b 4) observed up to 65 weeks (ages in days, as a warehouse
    has them), with Gamma-Gamma spend (p 5, q 3.5, gamma 25)."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(0.5, 1 / 8.6, n), rng.beta(0.8, 4.0, n)
    T = rng.uniform(1, 65, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(200):
        t = t + rng.exponential(1 / np.maximum(lam, 1e-9))
        buys = alive & (t < T)
        x[buys] += 1
        t_x[buys] = t[buys]
        alive &= buys & (rng.random(n) >= p)
        if not alive.any():
            break
    t_x, T = np.round(t_x * 7) / 7, np.round(T * 7) / 7  # a warehouse dates purchases by the day
    nu = rng.gamma(3.5, 1 / 25.0, n)
    m = np.where(x > 0, rng.gamma(5.0 * np.maximum(x, 1), 1 / nu) / np.maximum(x, 1), 0.0)
    return np.column_stack([x, t_x, T, m])


def at_scale(n: int) -> dict:
    X = synthetic_customers(n)
    t0 = time.perf_counter()
    model = BuyTillYouDie(horizon=52).fit(X)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    value = model.expected_value(X)
    alive = model.probability_alive(X)
    scored = time.perf_counter() - t0
    return {"customers": n, "fit_s": round(fit, 2), "score_s": round(scored, 2), "total_s": round(fit + scored, 2),
            "bgnbd": [round(v, 3) for v in model.bgnbd_], "gamma_gamma": [round(v, 3) for v in model.gamma_gamma_],
            "mean_value": round(float(value.mean()), 2), "mean_alive": round(float(alive.mean()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
           "simulations": [simulated(u) for u in args.users], "lifetime_value_at_scale": at_scale(args.customers) if args.customers else None}
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(run, default=str) + "\n")
    print(json.dumps(run, default=str, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
