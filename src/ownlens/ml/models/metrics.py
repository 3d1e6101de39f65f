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


def compute(task: str, y, values, threshold: float = 0.5) -> dict[str, float]:
    """Classification metrics (the yes/no ones at ``threshold``, reported as ``threshold``) or regression metrics."""
    if task != "binary":
        return regression_metrics(y, values)
    return {**classification_metrics(y, values, threshold), "threshold": float(threshold)}


def choose_threshold(y, p, objective: str) -> tuple[float, dict]:
    """The decision threshold for ``objective`` on (validation) labels ``y`` and probabilities ``p``, and how it
    was chosen. ``"f1"``: the best F1; ``"precision>=0.75"``: the most recall with precision at least 0.75
    (the best F1 when no threshold reaches that precision, said in the result)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    how = {"objective": objective, "validation_rows": int(len(y))}
    if len(np.unique(y)) < 2:
        return 0.5, {**how, "note": "the validation rows hold one class: the default 0.5"}
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if objective.startswith("precision>="):
        floor = float(objective.split(">=")[1])
        reaching = np.flatnonzero(precision >= floor)
        if len(reaching):
            best = reaching[np.argmax(recall[reaching])]
            return float(thresholds[best]), {**how, "validation_precision": float(precision[best]),
                                             "validation_recall": float(recall[best])}
        how["note"] = f"no threshold reaches precision {floor} on the validation rows: the best F1 instead"
    elif objective != "f1":
        raise ValueError(f"unknown decision objective {objective!r}: use 'f1' or 'precision>=P'")
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1))
    return float(thresholds[best]), {**how, "validation_precision": float(precision[best]), "validation_recall": float(recall[best])}


# metrics where less is better; every other metric a model reports is better when higher
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae", "davies_bouldin", "ctr_mean_abs_error", "mape"})


LOWER_IS_BETTER_SUFFIXES = ("_mape", "_mae", "_rmse", "_regret_share")


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER and not metric.endswith(LOWER_IS_BETTER_SUFFIXES)


def meets(metric: str, value: float, target: float) -> bool:
    """Whether ``value`` meets a seed target: at least it, or at most it for a metric where lower is better."""
    return bool(value >= target) if higher_is_better(metric) else bool(value <= target)


def at_least_as_good(metric: str, new: float | None, current: float | None) -> bool:
    """Whether ``new`` is at least as good as ``current`` on ``metric`` (an unknown current score counts as worse)."""
    if current is None or (isinstance(current, float) and current != current):
        return True
    if new is None or (isinstance(new, float) and new != new):
        return False
    return new >= current if higher_is_better(metric) else new <= current
