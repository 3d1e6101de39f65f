"""Demand forecasting (seed 004): traffic per day or hour with prediction intervals, backtested from rolling origins.

A series is a frame ``ds`` (timestamps), ``y`` (values). A forecaster is a function ``(history, future_ds) ->
frame of yhat, yhat_lower, yhat_upper``; two come with it: ``prophet`` (the library seed 004 names: trend,
weekly and yearly seasonality, holidays from the offline ``holidays`` package) and ``seasonal_naive`` (the value one
season before, the baseline any forecaster must beat). ``backtest`` refits a forecaster at rolling cutoffs, as
Prophet's ``cross_validation`` does (the first after ``initial``, then every ``period``, each forecasting
``horizon``), and ``horizon_metrics`` scores it per horizon with Prophet's own ``performance_metrics`` (RMSE, MAE,
MAPE, interval coverage over a rolling window of 10 % of the predictions), so both forecasters are judged alike.

Plain functions over pandas: no I/O.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pandas as pd

from ownlens.ml.errors import InvalidInput

Forecaster = Callable[[pd.DataFrame, pd.Series], pd.DataFrame]


def series(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame checked: ``ds`` parsed and sorted, ``y`` numeric; duplicated timestamps are refused."""
    missing = [c for c in ("ds", "y") if c not in frame.columns]
    if missing:
        raise InvalidInput(f"a series needs columns ds (timestamps) and y (values); missing {missing}")
    out = pd.DataFrame({"ds": pd.to_datetime(frame["ds"], errors="coerce"), "y": pd.to_numeric(frame["y"], errors="coerce")})
    if out["ds"].isna().any():
        raise InvalidInput("a timestamp in ds is not a date or time: use ISO dates such as 2026-03-01")
    duplicated = out["ds"].duplicated()
    if duplicated.any():
        raise InvalidInput(f"ds has {int(duplicated.sum())} duplicated timestamps (first {out['ds'][duplicated].iloc[0]}): "
                           "aggregate them to one row each first")
    return out.dropna(subset=["y"]).sort_values("ds", ignore_index=True)


def _require_prophet():
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)  # "Importing plotly failed": we draw with matplotlib
    try:
        import prophet  # noqa: F401
    except ImportError:
        raise InvalidInput("Prophet is not installed: pip install 'ownlens[forecast]' (or prophet)") from None


def prophet(**options) -> Forecaster:
    """Prophet with ``options`` (e.g. ``interval_width``, ``holidays_country="GB"``): fitted on each history."""
    _require_prophet()
    country = options.pop("holidays_country", None)

    def fit_predict(history: pd.DataFrame, future: pd.Series) -> pd.DataFrame:
        from cmdstanpy.utils import get_logger
        from prophet import Prophet

        get_logger().setLevel(logging.WARNING)  # (set to INFO on its first call: every fit would log two lines)
        model = Prophet(**options)
        if country:
            model.add_country_holidays(country_name=country)
        model.fit(history[["ds", "y"]])
        predicted = model.predict(pd.DataFrame({"ds": future}))
        return predicted[[c for c in ("yhat", "yhat_lower", "yhat_upper") if c in predicted]]  # (no interval: uncertainty_samples=0)

    return fit_predict


def seasonal_naive(season: pd.Timedelta | str = "7D", interval_width: float = 0.8) -> Forecaster:
    """The value one ``season`` before the forecast time (repeating the last season for longer horizons), with an
    interval from the quantiles of the history's own seasonal differences."""
    season = pd.Timedelta(season)

    def fit_predict(history: pd.DataFrame, future: pd.Series) -> pd.DataFrame:
        last = history["ds"].iloc[-1]
        values = history.set_index("ds")["y"]
        steps = np.ceil((pd.to_datetime(future) - last) / season).clip(lower=1)
        source = pd.to_datetime(future) - steps * season
        yhat = values.reindex(source).to_numpy()
        yhat = np.where(np.isnan(yhat), values.iloc[-1], yhat)  # (a gap in the history: the last value)
        diffs = (values - values.reindex(values.index - season).to_numpy()).dropna()
        lo, hi = (np.quantile(diffs, [(1 - interval_width) / 2, (1 + interval_width) / 2]) if len(diffs) else (0.0, 0.0))
        return pd.DataFrame({"yhat": yhat, "yhat_lower": yhat + lo, "yhat_upper": yhat + hi})

    return fit_predict


def backtest(frame: pd.DataFrame, forecaster: Forecaster, initial: str = "730D", period: str = "180D",
             horizon: str = "365D") -> pd.DataFrame:
    """Forecasts from rolling cutoffs (Prophet's scheme: cutoffs every ``period`` back from the end less
    ``horizon``, none earlier than ``initial`` after the start); rows ``ds, y, yhat, yhat_lower, yhat_upper, cutoff``."""
    s = series(frame)
    initial, period, horizon = pd.Timedelta(initial), pd.Timedelta(period), pd.Timedelta(horizon)
    start, end = s["ds"].iloc[0], s["ds"].iloc[-1]
    if end - start < initial + horizon:
        raise InvalidInput(f"the series spans {end - start}: a backtest needs at least initial + horizon "
                           f"({initial + horizon}); shorten them or give a longer series")
    cutoff, cutoffs = end - horizon, []
    while cutoff >= start + initial:
        cutoffs.append(cutoff)
        cutoff -= period
    parts = []
    for cutoff in sorted(cutoffs):
        history = s[s["ds"] <= cutoff]
        ahead = s[(s["ds"] > cutoff) & (s["ds"] <= cutoff + horizon)]
        predicted = forecaster(history, ahead["ds"].reset_index(drop=True))
        parts.append(ahead.reset_index(drop=True).join(predicted.reset_index(drop=True)).assign(cutoff=cutoff))
    return pd.concat(parts, ignore_index=True)


def horizon_metrics(backtested: pd.DataFrame, rolling_window: float = 0.1) -> pd.DataFrame:
    """RMSE, MAE, MAPE and interval coverage per horizon (Prophet's ``performance_metrics``, the same aggregation)."""
    _require_prophet()
    from prophet.diagnostics import performance_metrics

    return performance_metrics(backtested, metrics=["rmse", "mae", "mape", "coverage"], rolling_window=rolling_window)


def at_horizon(metrics: pd.DataFrame, days: int) -> dict:
    """The metrics row of a horizon in days."""
    row = metrics[metrics["horizon"] == pd.Timedelta(days=days)]
    if row.empty:
        raise InvalidInput(f"no backtested forecasts at a {days}-day horizon")
    return {k: float(v) for k, v in row.iloc[0].drop("horizon").items()}
