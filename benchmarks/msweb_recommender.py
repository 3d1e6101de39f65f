"""The recommender's collaborative part on real data: Anonymous Microsoft Web Data (UCI; ../shared/datasets/recsys_msweb).

The protocol of ../shared/datasets/SOURCES.md: factorise the training users' visits (32,711 users, 285 site
areas); for each test user with at least two visits hold out the last-listed one, fold the user in from the
others, rank the areas they have not visited, and score the held-out one: hit rate@10, NDCG@10 and MRR, next to
the reference numbers computed there (popularity: HR@10 0.6991, NDCG@10 0.4485, MRR 0.3788; item-kNN: 0.7819,
0.5312, 0.4631). It runs the production code paths: ``signals.fit_co_reading`` (co-reading by item kNN,
and NMF for comparison), ``signals``, ``fit`` (the blend, learnt on a validation slice of the training users) and
``top_k``. The content,
section and freshness signals have nothing to read here (no article metadata, no time) and stay zero.

    python benchmarks/msweb_recommender.py [--data ../shared/datasets/recsys_msweb]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ownlens.ml.models.content.recommendation.estimator import HybridRecommender, top_k
from ownlens.ml.models.content.recommendation.signals import SIGNALS, DateContext, UserBatch, design, fit_co_reading, signals


def read_dst(path: Path) -> list[list[int]]:
    """Each user's visited vroot ids, in file order."""
    users: list[list[int]] = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("C,"):
            users.append([])
        elif line.startswith("V,") and users:
            users[-1].append(int(line.split(",")[1]))
    return users


def matrix(users: list[list[int]], index: dict[int, int]) -> sparse.csr_matrix:
    rows = [i for i, visits in enumerate(users) for v in visits if v in index]
    cols = [index[v] for visits in users for v in visits if v in index]
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), len(index)))


def context(items: int, popularity: np.ndarray) -> DateContext:
    """A context with the items and their popularity; no content, sections or freshness on this data."""
    return DateContext(date(1998, 2, 1), pd.DataFrame({"article_id": np.arange(items)}), [], [], [], np.zeros((items, 1)),
                       popularity, np.zeros(items), np.zeros(items, dtype=np.int64))


def batch(known: sparse.csr_matrix) -> UserBatch:
    return UserBatch(np.arange(known.shape[0]).astype(str), sparse.csr_matrix((known.shape[0], 1)), known)


def held_out(users: list[list[int]], index: dict[int, int]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Users with >= 2 known visits: all but the last-listed as the known matrix, the last as the target."""
    kept = [[v for v in visits if v in index] for visits in users]
    kept = [visits for visits in kept if len(visits) >= 2]
    return matrix([v[:-1] for v in kept], index), np.array([index[v[-1]] for v in kept])


def scores_for(top: np.ndarray, target: np.ndarray) -> dict:
    hit = top == target[:, None]
    rank = np.where(hit.any(1), hit.argmax(1) + 1, 0)
    return {"hit_rate_at_10": float((rank > 0).mean()), "ndcg_at_10": float((np.where(rank > 0, 1, 0) / np.log2(np.maximum(rank, 1) + 1)).mean()),
            "users": int(len(target))}


def mrr(scores: np.ndarray, known: sparse.csr_matrix, target: np.ndarray) -> float:
    scores = np.array(scores, dtype=float)
    coo = known.tocoo()
    scores[coo.row, coo.col] = -np.inf
    rank = (scores > scores[np.arange(len(target)), target][:, None]).sum(1) + 1
    return float((1 / rank).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "recsys_msweb"))
    p.add_argument("--out")
    args = p.parse_args()
    started = time.perf_counter()
    train_users = read_dst(Path(args.data) / "anonymous-msweb.data")
    test_users = read_dst(Path(args.data) / "anonymous-msweb.test")
    index = {v: i for i, v in enumerate(sorted({v for visits in train_users for v in visits}))}
    train = matrix(train_users, index)
    counts = np.asarray(train.sum(0)).ravel()
    popularity = np.log1p(counts) / np.log1p(counts.max())

    est = HybridRecommender(random_state=0)  # the default: co-reading by item kNN
    rng = np.random.default_rng(0)
    validation = rng.random(len(train_users)) < 0.1  # the blend is learnt on held-out training users, not the test set
    fit_users = [u for u, v in zip(train_users, validation) if not v]
    ctx = fit_co_reading(context(len(index), popularity), matrix(fit_users, index), est)
    known, target = held_out([u for u, v in zip(train_users, validation) if v], index)
    found = signals(ctx, batch(known), slice(None), est)
    unread = known.toarray() == 0
    relevant = np.zeros(known.shape, dtype=bool)
    relevant[np.arange(len(target)), target] = True
    est.fit(design(found, list(SIGNALS), unread), relevant[unread],
            groups=np.broadcast_to(np.arange(known.shape[0])[:, None], known.shape)[unread])

    ctx = fit_co_reading(context(len(index), popularity), train, est)  # the co-reading from every training user
    known, target = held_out(test_users, index)
    found = signals(ctx, batch(known), slice(None), est)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "items": len(index), "train_users": len(train_users),
               "weights": dict(zip(SIGNALS, map(float, est.weights_)))}
    nmf = HybridRecommender(collaborative="nmf", n_components=8, random_state=0)
    nmf_signal = signals(fit_co_reading(context(len(index), popularity), train, nmf), batch(known), slice(None), nmf)["collaborative"]
    for name, scores in (("popularity", found["popularity"]), ("nmf (8 factors) alone", nmf_signal),
                         ("co-reading (item kNN) alone", found["collaborative"]),
                         ("hybrid", est.blend([found[s] for s in SIGNALS]))):
        top, _ = top_k(scores, known, 10)
        results[name] = {**scores_for(top, target), "mrr": mrr(scores, known, target)}
        print(name, json.dumps(results[name]), flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
