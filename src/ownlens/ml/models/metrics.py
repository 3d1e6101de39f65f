"""Model metrics, computed the same way for a model and for the simulator's oracle on the same rows."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def classification_metrics(y, p, threshold: float = 0.5) -> dict[str, float]:
    """accuracy, precision, recall, f1 (at ``threshold``), roc_auc, pr_auc, log_loss, brier and the base rate."""
    y, p = np.asarray(y, dtype=int), np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    yhat = (p >= threshold).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y, yhat)),
        "precision": float(skm.precision_score(y, yhat, zero_division=0)),
        "recall": float(skm.recall_score(y, yhat, zero_division=0)),
        "f1": float(skm.f1_score(y, yhat, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "positive_rate": float(y.mean()),
        "rows": int(len(y)),
    }


def regression_metrics(y, yhat) -> dict[str, float]:
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    return {
        "r2": float(skm.r2_score(y, yhat)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y, yhat))),
        "mae": float(skm.mean_absolute_error(y, yhat)),
        "mean_target": float(y.mean()),
        "rows": int(len(y)),
    }


def compute(task: str, y, values) -> dict[str, float]:
    return classification_metrics(y, values) if task == "binary" else regression_metrics(y, values)


def best_threshold(y, p) -> float:
    """The probability threshold with the best F1 (ties to the higher threshold)."""
    precision, recall, thresholds = skm.precision_recall_curve(np.asarray(y, dtype=int), np.asarray(p, dtype=float))
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


# metrics where less is better; every other metric a model reports is better when higher
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "davies_bouldin", "ctr_mean_abs_error", "mape"})


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def at_least_as_good(metric: str, new: float | None, current: float | None) -> bool:
    """Whether ``new`` is at least as good as ``current`` on ``metric`` (an unknown current score counts as worse)."""
    if current is None or (isinstance(current, float) and current != current):
        return True
    if new is None or (isinstance(new, float) and new != new):
        return False
    return new >= current if higher_is_better(metric) else new <= current
