"""Multi-touch attribution: every method gives all the conversions out; Shapley's coalition enumeration equals its
closed form and its sampled estimate converges to it; on ChannelAttribution's path data (SOURCES.md, section 4)
first, last, linear and the Markov removal effects match the published table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ownlens.ml.errors import InvalidInput
from ownlens.ml.models.marketing import attribution as A

DATA = Path(os.environ.get("OWNLENS_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
PATHS = DATA / "attribution_channelattribution" / "Data.csv"

# SOURCES.md section 4: first, last, linear, markov1 (with nulls), markov1 (converting paths only)
PUBLISHED = {
    "alpha": (6308, 8447, 7574.719, 5344.9, 5260.1), "beta": (2831, 989, 2083.500, 2527.4, 2585.4),
    "delta": (1, 5, 1.725, 4.6, 4.3), "epsilon": (99, 531, 272.170, 599.6, 604.8),
    "eta": (3164, 4167, 3539.951, 3340.8, 3347.8), "gamma": (165, 92, 121.042, 171.1, 176.0),
    "iota": (4606, 3355, 3857.096, 3884.6, 3899.2), "kappa": (74, 230, 137.964, 274.4, 276.7),
    "lambda": (902, 1207, 1035.258, 1282.8, 1295.5), "mi": (2, 2, 2.222, 1.7, 1.9),
    "theta": (1606, 653, 1022.801, 1971.9, 1938.8), "zeta": (27, 107, 136.552, 381.1, 394.5),
}


def _small() -> pd.DataFrame:
    return pd.DataFrame({"path": ["search > social > email", "social", "search > search", "email > social", "display"],
                         "conversions": [30, 10, 20, 5, 0], "nulls": [70, 90, 80, 45, 200]})


def test_every_method_gives_out_exactly_the_conversions():
    frame = _small()
    table = A.attribute(frame)
    assert list(table.columns) == list(A.METHODS) and set(table.index) == {"search", "social", "email", "display"}
    np.testing.assert_allclose(table.sum().to_numpy(), 65.0)
    assert table.loc["display"].abs().max() < 1e-9  # never on a converting path: no credit from any method
    assert table.loc["search", "first_touch"] == 50 and table.loc["email", "last_touch"] == 30


def test_shapley_enumeration_equals_its_closed_form_and_sampling_converges_to_it():
    frame = _small()
    exact, closed = A.shapley(frame), A.shapley_closed_form(frame)
    pd.testing.assert_series_equal(exact, closed, check_exact=False, atol=1e-9)
    sampled = A.shapley(frame, exact_up_to=0, samples=3000, seed=1)  # forced to sample
    np.testing.assert_allclose(sampled.sum(), 65.0)  # every sampled order gives out v(all) exactly
    np.testing.assert_allclose(sampled.to_numpy(), exact.to_numpy(), atol=1.0)


def test_bad_journeys_get_one_clear_error():
    with pytest.raises(InvalidInput, match="columns path and conversions"):
        A.linear(pd.DataFrame({"path": ["a"]}))
    with pytest.raises(InvalidInput, match="non-negative"):
        A.linear(pd.DataFrame({"path": ["a"], "conversions": [-1]}))
    with pytest.raises(InvalidInput, match="empty"):
        A.linear(pd.DataFrame({"path": ["a >  > b"], "conversions": [1]}))
    with pytest.raises(InvalidInput, match="nothing to attribute"):
        A.markov_removal(pd.DataFrame({"path": ["a > b"], "conversions": [0], "nulls": [5]}))


@pytest.mark.skipif(not PATHS.exists(), reason=f"no ChannelAttribution data at {PATHS}")
def test_channel_attribution_paths_reproduce_the_published_table():
    frame = pd.read_csv(PATHS, sep=";").rename(columns={"total_conversions": "conversions", "total_null": "nulls"})
    first, last, linear = A.first_touch(frame), A.last_touch(frame), A.linear(frame)
    markov, markov_conv = A.markov_removal(frame), A.markov_removal(frame, with_nulls=False)
    for channel, (f, la, li, m, mc) in PUBLISHED.items():
        assert first[channel] == f and last[channel] == la
        assert linear[channel] == pytest.approx(li, abs=5e-4)
        assert markov[channel] == pytest.approx(m, abs=0.051) and markov_conv[channel] == pytest.approx(mc, abs=0.051)
    assert A.removal_effects(frame).attrs["baseline"] == pytest.approx(0.223845, abs=5e-7)
    shapley = A.shapley(frame)  # 12 channels: all 4,096 coalitions
    assert shapley.sum() == pytest.approx(19785) and shapley.idxmax() == "alpha"
