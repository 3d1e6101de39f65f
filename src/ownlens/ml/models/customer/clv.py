"""Customer lifetime value (seed 004): the probabilistic models the literature validates, as plain functions.

* Non-contractual purchases (a reader who buys articles, gifts or merchandise now and then): BG/NBD for how many
  transactions a customer makes and whether they are still "alive" (Fader, Hardie & Lee 2005), with the Gamma-Gamma
  model of the spend per transaction (Fader & Hardie 2013), through the ``lifetimes`` library, which reproduces the
  published fits; inputs are one row per customer: ``frequency`` (repeat transactions), ``recency`` and ``T``
  (the ages at the last transaction and now, in periods) and, for spend, ``monetary_value`` (mean spend per repeat).
* Subscriptions (contractual, renewing each period): the shifted-beta-geometric model (Fader & Hardie 2007), whose
  churn probability per period varies across subscribers as a Beta(alpha, beta); fitted to a cohort's survivors by
  period, it projects retention and the expected lifetime.

No I/O: fed from the warehouse or from a file alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln

from ownlens.ml.errors import InvalidInput

SUMMARY = ("frequency", "recency", "T")


def _summary(frame: pd.DataFrame, columns=SUMMARY) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"customer summaries need columns {list(columns)}; missing {missing}")
    out = frame[list(columns)].apply(pd.to_numeric, errors="coerce")
    if out.isna().any().any() or (out < 0).any().any():
        raise InvalidInput(f"{list(columns)} must be non-negative numbers for every customer")
    if "recency" in out and (out["recency"] > out["T"]).any():
        raise InvalidInput("a customer's recency (age at the last transaction) exceeds their age T")
    return out


def fit_bgnbd(frame: pd.DataFrame, penalizer: float = 0.0):
    """A fitted ``lifetimes.BetaGeoFitter`` (``params_``: r, alpha, a, b) on customer summaries."""
    from lifetimes import BetaGeoFitter

    s = _summary(frame)
    if len(s) < 10:
        raise InvalidInput(f"BG/NBD needs at least 10 customers (got {len(s)})")
    return BetaGeoFitter(penalizer_coef=penalizer).fit(s["frequency"], s["recency"], s["T"])


def fit_gamma_gamma(frame: pd.DataFrame, penalizer: float = 0.0):
    """A fitted ``lifetimes.GammaGammaFitter`` (``params_``: p, q, v) on the customers with repeat transactions:
    one-purchase customers say nothing about repeat spend and are left out (they get the population mean)."""
    from lifetimes import GammaGammaFitter

    s = _summary(frame, ("frequency", "monetary_value"))
    repeat = s[s["frequency"] > 0]
    if len(repeat) < 10:
        raise InvalidInput(f"Gamma-Gamma needs at least 10 customers with repeat transactions (got {len(repeat)})")
    return GammaGammaFitter(penalizer_coef=penalizer).fit(repeat["frequency"], repeat["monetary_value"])


# -- the shifted-beta-geometric model ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShiftedBetaGeometric:
    """A fitted sBG: churn probability per period ~ Beta(alpha, beta) across subscribers."""

    alpha: float
    beta: float
    log_likelihood: float

    def churn_probability(self, periods: int) -> np.ndarray:
        """P(a new subscriber churns in period t), t = 1 .. periods."""
        t = np.arange(1, periods + 1)
        return np.exp(betaln(self.alpha + 1, self.beta + t - 1) - betaln(self.alpha, self.beta))

    def survival(self, periods: int) -> np.ndarray:
        """P(still subscribed after t periods), t = 0 .. periods."""
        t = np.arange(0, periods + 1)
        return np.exp(betaln(self.alpha, self.beta + t) - betaln(self.alpha, self.beta))

    def retention(self, periods: int) -> np.ndarray:
        """The retention rate of period t among those alive at t - 1, t = 1 .. periods: (beta + t - 1) / (alpha + beta + t - 1)."""
        t = np.arange(1, periods + 1)
        return (self.beta + t - 1) / (self.alpha + self.beta + t - 1)


def fit_sbg(alive) -> ShiftedBetaGeometric:
    """Fit an sBG to a cohort's survivors by period (``alive[0]`` the cohort's size, then each period's survivors)."""
    alive = np.asarray(alive, dtype=float)
    if alive.ndim != 1 or len(alive) < 3:
        raise InvalidInput("a cohort needs its size and at least two periods of survivors to fit")
    if (alive < 0).any() or (np.diff(alive) > 0).any() or alive[0] <= 0:
        raise InvalidInput("survivors must start positive and never increase from one period to the next")
    lost, n = -np.diff(alive), len(alive) - 1
    if alive[-1] == alive[0]:
        raise InvalidInput("nobody in the cohort churned yet: too young to fit a churn distribution")

    def negative_ll(log_params):
        fit = ShiftedBetaGeometric(*np.exp(log_params), 0.0)
        p, s = fit.churn_probability(n), fit.survival(n)[-1]
        return -(np.sum(lost * np.log(np.maximum(p, 1e-300))) + alive[-1] * np.log(max(s, 1e-300)))

    result = minimize(negative_ll, np.log([1.0, 1.0]), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 5000})
    alpha, beta = np.exp(result.x)
    return ShiftedBetaGeometric(float(alpha), float(beta), float(-result.fun))


def fit_sbg_durations(periods, churned) -> ShiftedBetaGeometric:
    """Fit an sBG to individual subscriptions of any ages: ``periods`` each one lasted (churned in that period,
    counting from 1) or has survived so far (censored, ``churned`` False). Cohorts of different ages pool this way."""
    periods, churned = np.asarray(periods, dtype=float), np.asarray(churned, dtype=bool)
    if periods.ndim != 1 or len(periods) != len(churned) or len(periods) < 10:
        raise InvalidInput(f"the sBG needs at least 10 subscriptions with their periods and whether they churned (got {len(periods)})")
    if (periods < 0).any() or (churned & (periods < 1)).any():
        raise InvalidInput("periods must be non-negative, and at least 1 for a subscription that churned")
    if not churned.any():
        raise InvalidInput("no subscription churned yet: too young to fit a churn distribution")

    def negative_ll(log_params):
        a, b = np.exp(log_params)
        ll = np.where(churned, betaln(a + 1, b + periods - 1), betaln(a, b + periods)) - betaln(a, b)
        return -float(ll.sum())

    result = minimize(negative_ll, np.log([1.0, 1.0]), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 5000})
    alpha, beta = np.exp(result.x)
    return ShiftedBetaGeometric(float(alpha), float(beta), float(-result.fun))
