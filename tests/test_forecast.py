"""Demand forecasting backtested from rolling origins: on the Peyton Manning page views (SOURCES.md section 6)
Prophet through our backtest matches its published 37-day RMSE and beats seasonal-naive; on a synthetic traffic series
it beats seasonal-naive too; bad series get one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.operations import forecast as F

pytest.importorskip("prophet")
DATA = Path(os.environ.get("OWNLENS_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
PEYTON = DATA / "forecast_wikipedia_pageviews" / "example_wp_log_peyton_manning.csv"


@pytest.mark.skipif(not PEYTON.exists(), reason=f"no Peyton Manning series at {PEYTON}")
def test_prophet_matches_its_published_backtest_and_beats_seasonal_naive():
    frame = pd.read_csv(PEYTON)
    prophet = F.at_horizon(F.horizon_metrics(F.backtest(frame, F.prophet())), 37)
    assert prophet["rmse"] <= 0.702 + 0.005 and prophet["mape"] < 0.065  # published: RMSE 0.702, MAPE 0.0584
    for season in ("7D", "364D"):
        naive = F.at_horizon(F.horizon_metrics(F.backtest(frame, F.seasonal_naive(season))), 37)
        assert prophet["rmse"] < naive["rmse"], season


def test_prophet_beats_seasonal_naive_on_daily_traffic_with_weekly_and_yearly_seasons():
    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-01", "2025-12-31", freq="D")
    t = np.arange(len(ds))
    y = 8 + 0.0005 * t + 0.3 * (ds.dayofweek >= 5) + 0.4 * np.sin(2 * np.pi * t / 365.25) + rng.normal(0, 0.15, len(ds))
    frame = pd.DataFrame({"ds": ds, "y": y})
    kwargs = {"initial": "800D", "period": "90D", "horizon": "60D"}
    prophet = F.at_horizon(F.horizon_metrics(F.backtest(frame, F.prophet(), **kwargs)), 30)
    naive = F.at_horizon(F.horizon_metrics(F.backtest(frame, F.seasonal_naive("7D"), **kwargs)), 30)
    assert prophet["rmse"] < 0.8 * naive["rmse"] and 0.6 < prophet["coverage"] <= 1.0


def test_bad_series_get_one_clear_error():
    days = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=40, freq="D").astype(str), "y": np.arange(40.0)})
    with pytest.raises(InvalidInput, match="needs at least initial"):
        F.backtest(days, F.seasonal_naive())
    with pytest.raises(InvalidInput, match="duplicated"):
        F.series(pd.concat([days, days.head(1)]))
    with pytest.raises(InvalidInput, match="not a date"):
        F.series(days.assign(ds="yesterday"))
    with pytest.raises(InvalidInput, match="missing"):
        F.series(days.drop(columns="y"))
    gappy = days.drop(index=[10, 11, 12])  # gaps are fine: forecasts where the history has them fall back to the last value
    out = F.backtest(gappy, F.seasonal_naive(), initial="20D", period="5D", horizon="10D")
    assert out["yhat"].notna().all() and len(out) > 0
