"""Shapley attribution time against the number of channels: exact enumeration of the 2^n coalitions, the sampled
estimate (2,000 channel orders) and the closed form, on synthetic journeys (50,000 distinct paths of 1-6 touches),
with the sampled estimate's largest error against the exact values.

    python benchmarks/attribution.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from ownlens.ml.models.marketing import attribution as A


def journeys(n: int, paths: int = 50_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = [f"ch{i:02d}" for i in range(n)]
    pull = rng.dirichlet(np.ones(n))
    touches = rng.integers(1, 7, paths)
    path = [" > ".join(rng.choice(names, k, p=pull)) for k in touches]
    return pd.DataFrame({"path": path, "conversions": rng.poisson(2, paths), "nulls": rng.poisson(8, paths)})


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for n in (5, 10, 12, 15, 18, 20, 30):
        frame = journeys(n)
        closed, t_closed = timed(lambda: A.shapley_closed_form(frame))
        sampled, t_sampled = timed(lambda: A.shapley(frame, exact_up_to=0, samples=2000))
        row = {"channels": n, "closed_form_s": t_closed, "sampled_s": t_sampled,
               "sampled_max_error": round(float((sampled - closed).abs().max()), 2), "total": float(closed.sum())}
        if n <= 20:
            exact, row["exact_s"] = timed(lambda: A.shapley(frame))
            row["exact_vs_closed_max_diff"] = float((exact - closed).abs().max())
        rows.append(row)
        print(json.dumps(row) if args.json else row, flush=True)


if __name__ == "__main__":
    main()
