"""XGBoost tree ensembles flattened into numpy arrays, for scoring a few rows at a time.

XGBoost spends ~0.4 ms per call on one row here (a proxy matrix, thread set-up); a single user in the API
wants a few tens of microseconds. :func:`compile_xgboost` flattens a fitted booster into node arrays and
walks every tree at once, one depth level per step. It is only used once :meth:`CompiledTrees.verify` has
checked it against the booster on rows built from the split thresholds, missing values included; anything
it does not understand (categorical splits, DART, other objectives) gives None and the booster keeps
scoring. (LightGBM's own one-row prediction takes ~80 us here, so it needs none of this.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

LINKS = {"identity": lambda m: m, "sigmoid": lambda m: 1.0 / (1.0 + np.exp(-m)), "exp": np.exp}
OBJECTIVE_LINKS = {"binary:logistic": "sigmoid", "count:poisson": "exp", "reg:squarederror": "identity"}


@dataclass(frozen=True)
class CompiledTrees:
    """Every node of every tree in flat arrays; a leaf points to itself, so each walk takes ``depth`` steps.

    A row goes left at a node when ``x < threshold`` (both rounded to float32, as XGBoost compares them)
    and follows ``default_left`` when ``x`` is missing.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    depth: int
    link: str
    bias: float = 0.0

    def margin(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64).astype(np.float32).astype(np.float64)
        if len(X) == 1:  # the API's case: 1-D walks, cheaper than the general 2-D gathers
            row, node = X[0], self.roots
            for _ in range(self.depth):
                x = row.take(self.feature.take(node))
                go_left = (x < self.threshold.take(node)) | (np.isnan(x) & self.default_left.take(node))
                node = np.where(go_left, self.left.take(node), self.right.take(node))
            return np.array([self.value.take(node).sum() + self.bias])
        rows = np.arange(X.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (X.shape[0], len(self.roots)))
        for _ in range(self.depth):
            x = X[rows, self.feature.take(node)]  # NaN < t is False, so missing values go left only by default
            go_left = (x < self.threshold.take(node)) | (np.isnan(x) & self.default_left.take(node))
            node = np.where(go_left, self.left.take(node), self.right.take(node))
        return self.value.take(node).sum(axis=1) + self.bias

    def predict(self, X: np.ndarray) -> np.ndarray:
        return LINKS[self.link](self.margin(X))

    def probe_rows(self, n_features: int, n: int = 256, seed: int = 0) -> np.ndarray:
        """Rows that exercise every split: each value a threshold, a neighbour of one, or missing."""
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, n_features))
        internal = self.left != np.arange(len(self.left))
        for j in range(n_features):
            cuts = np.unique(self.threshold[internal & (self.feature == j)])
            if len(cuts):
                candidates = np.concatenate([cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf),
                                             cuts - 1e-3, [0.0, np.nan, cuts.min() - 1, cuts.max() + 1]])
                X[:, j] = rng.choice(candidates, n)
            else:
                X[rng.random(n) < 0.2, j] = np.nan
        return X

    def verify(self, reference, n_features: int) -> bool:
        """True when this agrees with ``reference(X)`` (the booster) on probe rows."""
        X = self.probe_rows(n_features)
        return bool(np.allclose(self.predict(X), np.asarray(reference(X), dtype=np.float64), rtol=1e-4, atol=1e-6))


def _flatten(trees: list[dict]) -> tuple[dict, int]:
    columns: dict[str, list] = {k: [] for k in ("feature", "threshold", "left", "right", "default_left", "value")}
    roots, depth = [], 0
    for tree in trees:
        if any(tree.get("categories", [])) or any(tree.get("split_type", [])):
            raise ValueError("categorical splits")
        base = len(columns["feature"])
        roots.append(base)
        left, right, cond = tree["left_children"], tree["right_children"], tree["split_conditions"]
        for i, (lo, hi) in enumerate(zip(left, right)):
            leaf = lo == -1
            columns["feature"].append(0 if leaf else tree["split_indices"][i])
            columns["threshold"].append(0.0 if leaf else cond[i])
            columns["left"].append(base + (i if leaf else lo))
            columns["right"].append(base + (i if leaf else hi))
            columns["default_left"].append(bool(tree["default_left"][i]))
            columns["value"].append(cond[i] if leaf else 0.0)  # XGBoost keeps a leaf's value in split_conditions
        stack = [(0, 0)]
        while stack:
            i, d = stack.pop()
            depth = max(depth, d)
            if left[i] != -1:
                stack += [(left[i], d + 1), (right[i], d + 1)]
    arrays = {"roots": np.array(roots, np.intp), "feature": np.array(columns["feature"], np.intp),
              "threshold": np.array(columns["threshold"], np.float32).astype(np.float64),  # float32 in XGBoost
              "left": np.array(columns["left"], np.intp), "right": np.array(columns["right"], np.intp),
              "default_left": np.array(columns["default_left"], bool), "value": np.array(columns["value"], np.float64)}
    return arrays, depth


def compile_xgboost(booster) -> CompiledTrees | None:
    """Flatten a fitted ``xgboost.Booster`` and check it against the booster; None when it cannot."""
    try:
        learner = json.loads(booster.save_raw("json"))["learner"]
        link = OBJECTIVE_LINKS.get(learner["objective"]["name"])
        if learner["gradient_booster"]["name"] != "gbtree" or link is None:
            return None
        arrays, depth = _flatten(learner["gradient_booster"]["model"]["trees"])
    except (KeyError, TypeError, ValueError):
        return None
    compiled = CompiledTrees(**arrays, depth=depth, link=link)
    n = booster.num_features()
    probe = compiled.probe_rows(n, n=32)  # the base score, read off as the margin the trees do not explain
    bias = np.median(np.asarray(booster.inplace_predict(probe, predict_type="margin"), np.float64) - compiled.margin(probe))
    compiled = replace(compiled, bias=float(bias))
    return compiled if compiled.verify(booster.inplace_predict, n) else None
