"""Customer lifetime value models against the literature (SOURCES.md sections 3 and 3b) and on data with a known
answer: BG/NBD and Gamma-Gamma on CDNOW reproduce the published fits, the sBG reproduces Fader & Hardie (2007) for
both cohorts and recovers the parameters of a simulated cohort; bad input gets one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.customer import clv

DATA = Path(os.environ.get("OWNLENS_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
CDNOW = DATA / "clv_cdnow" / "cdnow_customers_summary_with_transactions.csv"
SBG = DATA / "subscription_retention_sbg" / "sbg_survival_fader_hardie_2007.csv"


@pytest.mark.skipif(not CDNOW.exists(), reason=f"no CDNOW summary at {CDNOW}")
def test_bgnbd_and_gamma_gamma_reproduce_the_published_cdnow_fits():
    frame = pd.read_csv(CDNOW).rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"})
    bg = clv.fit_bgnbd(frame)
    assert [round(bg.params_[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert bg.conditional_expected_number_of_purchases_up_to_time(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    gg = clv.fit_gamma_gamma(frame)
    assert [round(gg.params_[k], 2) for k in ("p", "q", "v")] == [6.25, 3.74, 15.45]
    spend = gg.conditional_expected_average_profit(frame["frequency"], frame["monetary_value"]).head(10).to_numpy()
    np.testing.assert_allclose(spend, [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17], atol=0.011)


@pytest.mark.skipif(not SBG.exists(), reason=f"no sBG survival table at {SBG}")
def test_shifted_beta_geometric_reproduces_fader_and_hardie_2007():
    table = pd.read_csv(SBG)
    for column, (alpha, beta, ll, projected, actual) in {
        "regular_alive": (0.704, 1.182, -1680.27, [220.1, 204.4, 191.2, 179.9, 170.0], [223, 207, 194, 183, 173]),
        "highend_alive": (0.668, 3.806, -1611.16, [460.4, 435.8, 414.2, 395.1, 378.0], [468, 445, 427, 409, 394]),
    }.items():
        fit = clv.fit_sbg(table[column].to_numpy()[:8])  # years 0-7, as the paper
        assert (round(fit.alpha, 3), round(fit.beta, 3), round(fit.log_likelihood, 2)) == (alpha, beta, ll)
        np.testing.assert_allclose(1000 * fit.survival(12)[8:], projected, atol=0.05)
        assert np.abs(1000 * fit.survival(12)[8:] - actual).max() < 20  # years 8-12, never seen: within 2 % of the cohort


def test_shifted_beta_geometric_recovers_a_simulated_cohort():
    rng = np.random.default_rng(3)
    churn = rng.beta(0.8, 2.5, 20_000)
    lifetime = rng.geometric(churn)  # periods until the subscriber churns
    alive = [int((lifetime > t).sum()) for t in range(9)]
    fit = clv.fit_sbg(alive)
    assert fit.alpha == pytest.approx(0.8, rel=0.15) and fit.beta == pytest.approx(2.5, rel=0.15)
    assert np.all(np.diff(fit.retention(8)) > 0)  # retention rises: the churn-prone leave first


def test_bad_customer_value_input_gets_one_clear_error():
    with pytest.raises(InvalidInput, match="too young"):
        clv.fit_sbg([1000, 1000, 1000])
    with pytest.raises(InvalidInput, match="never increase"):
        clv.fit_sbg([1000, 900, 950])
    with pytest.raises(InvalidInput, match="at least two periods"):
        clv.fit_sbg([1000, 900])
    one_purchase = pd.DataFrame({"frequency": [0] * 30, "recency": [0] * 30, "T": [10] * 30, "monetary_value": [0] * 30})
    with pytest.raises(InvalidInput, match="repeat transactions"):
        clv.fit_gamma_gamma(one_purchase)
    with pytest.raises(InvalidInput, match="missing"):
        clv.fit_bgnbd(one_purchase.drop(columns="T"))
    with pytest.raises(InvalidInput, match="exceeds"):
        clv.fit_bgnbd(one_purchase.assign(recency=20))


@pytest.mark.skipif(not CDNOW.exists(), reason=f"no CDNOW summary at {CDNOW}")
def test_the_products_estimator_reproduces_lifetimes_on_cdnow():
    from ownlens.ml.models.customer.lifetime import BuyTillYouDie

    frame = pd.read_csv(CDNOW)
    X = frame[["x", "t_x", "T", "zbar"]].to_numpy(float)
    model = BuyTillYouDie(horizon=39).fit(X)
    assert list(np.round(model.bgnbd_, 3)) == [0.243, 4.414, 0.793, 2.426]
    assert list(np.round(model.gamma_gamma_, 2)) == [6.25, 3.74, 15.45]
    assert model.predict(np.array([[2, 30.43, 38.86, 0.0]]))[0] == pytest.approx(1.226, abs=5e-4)  # the worked example
    np.testing.assert_allclose(model.expected_spend(X[:10]), [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17], atol=0.011)


def test_shifted_beta_geometric_pools_cohorts_of_every_age():
    rng = np.random.default_rng(5)
    churn = rng.beta(0.9, 6.0, 30_000)
    lifetime = rng.geometric(churn)
    age = rng.integers(1, 25, 30_000)  # subscriptions started over two years, observed today
    fit = clv.fit_sbg_durations(np.minimum(lifetime, age), lifetime <= age)
    assert fit.alpha == pytest.approx(0.9, rel=0.15) and fit.beta == pytest.approx(6.0, rel=0.15)
    with pytest.raises(InvalidInput, match="too young"):
        clv.fit_sbg_durations(np.full(20, 3), np.zeros(20, dtype=bool))
