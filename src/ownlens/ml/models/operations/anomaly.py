"""Anomaly detection on operational and business metrics (seed 004): a score per row of a series, from its own past.

Each row's deviation is its distance from the mean of the ``window`` rows before it, in their standard deviations;
the score is how unusual that deviation is among the series' own earlier deviations (its rank, 0-1), so one threshold
means the same on a CPU series and on a revenue series. A row scores only at an anomaly's onset: when every score of
the ``calm_rows`` before it stayed below ``calm``; later rows of an anomaly in progress score 0 (one alert per
anomaly, not one per row). Streaming-capable: a row's score uses only the rows before it.

Scored on NAB's 58 series with NAB's own rules in ``benchmarks/nab_anomaly.py`` (BENCHMARKS.md).
"""

from __future__ import annotations

import bisect

import numpy as np
import pandas as pd

from ownlens.ml.errors import InvalidInput


def deviations(values, window: int = 6400, min_rows: int = 20) -> np.ndarray:
    """|x - mean of the window before| / its standard deviation (0 until ``min_rows`` rows exist)."""
    s = pd.Series(np.asarray(values, dtype=float))
    if s.isna().any():
        raise InvalidInput("the series has missing values: fill or drop them first")
    past = s.shift(1).rolling(window, min_periods=min_rows)
    return ((s - past.mean()).abs() / (past.std() + 1e-9)).fillna(0.0).to_numpy()


def ranks(z: np.ndarray, min_history: int = 100) -> np.ndarray:
    """Each value's rank (0-1) among the values before it (0 until ``min_history`` exist)."""
    out, seen = np.zeros(len(z)), []
    for i, v in enumerate(z):
        if len(seen) >= min_history:
            out[i] = bisect.bisect_left(seen, v) / len(seen)
        bisect.insort(seen, float(v))
    return out


def onsets(scores: np.ndarray, calm_rows: int = 100, calm: float = 0.995) -> np.ndarray:
    """``scores`` where the ``calm_rows`` before stayed below ``calm``, else 0."""
    before = pd.Series(scores).shift(1).rolling(calm_rows, min_periods=1).max().fillna(0.0).to_numpy()
    return np.where(before < calm, scores, 0.0)


def anomaly_scores(values, window: int = 6400, calm_rows: int = 100, calm: float = 0.995, min_history: int = 100) -> np.ndarray:
    """The score (0-1) of every row of a series; alert at a threshold such as 0.999."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise InvalidInput("a series needs at least two values")
    return onsets(ranks(deviations(values, window), min_history), calm_rows, calm)
