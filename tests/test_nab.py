"""NAB scoring (models/nab.py) reproduces NAB v1.1's published numbers: per-row S(t) columns, per-file scores and
counts, the null detector on all 58 files, and the normalised scoreboard; plus the threshold sweep against brute force."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ownlens.ml.models import nab

ROOT = Path(os.environ.get("OWNLENS_NAB_ROOT", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "anomaly_nab"))
pytestmark = pytest.mark.skipif(not (ROOT / "labels" / "combined_windows.json").exists(), reason=f"no NAB copy at {ROOT}")

RAW_FILES = ["realKnownCause/nyc_taxi.csv", "realKnownCause/machine_temperature_system_failure.csv"]
# published values are printed with 12 significant digits
RTOL = 1e-10


@pytest.fixture(scope="module")
def corpus():
    return nab.load_corpus(ROOT)


@pytest.fixture(scope="module")
def thresholds():
    return json.loads((ROOT / "config" / "thresholds.json").read_text())


def published(detector: str, profile: str) -> pd.DataFrame:
    return pd.read_csv(ROOT / "results" / detector / f"{detector}_{profile}_scores.csv").set_index("File")


def raw_output(detector: str, name: str) -> pd.DataFrame:
    folder, file = name.split("/")
    return pd.read_csv(ROOT / "results" / detector / folder / f"{detector}_{file}")


def window_starts(corpus) -> dict[str, np.ndarray]:
    """The perfect detector: 1 on the first row of each window, 0 elsewhere."""
    out = {}
    for name, (frame, windows) in corpus.items():
        s = np.zeros(len(frame))
        for start, _ in windows:
            s[np.flatnonzero(frame["timestamp"].values >= np.datetime64(start))[0]] = 1.0
        out[name] = s
    return out


def test_profiles_and_corpus(corpus):
    assert nab.load_profiles(ROOT) == nab.PROFILES
    assert len(corpus) == 58 and sum(len(f) for f, _ in corpus.values()) == 365_558
    assert sum(len(w) for _, w in corpus.values()) == 116
    assert list(nab.load_corpus(ROOT, "realTweets/")) == sorted(n for n in corpus if n.startswith("realTweets/"))
    assert list(nab.load_corpus(ROOT, "real*/nyc_*")) == ["realKnownCause/nyc_taxi.csv"]


@pytest.mark.parametrize("profile", sorted(nab.PROFILES))
@pytest.mark.parametrize("detector", ["numenta", "windowedGaussian"])
@pytest.mark.parametrize("name", RAW_FILES)
def test_raw_outputs_match_published_rows_scores_and_counts(corpus, thresholds, detector, profile, name):
    frame, windows = corpus[name]
    out = raw_output(detector, name)
    assert (pd.to_datetime(out["timestamp"]).values == frame["timestamp"].values).all()
    threshold = thresholds[detector][profile]["threshold"]
    fs = nab.score_file(frame["timestamp"], out["anomaly_score"].to_numpy() >= threshold, windows, nab.PROFILES[profile])
    np.testing.assert_allclose(fs.weights, out[f"S(t)_{profile}"].to_numpy(), rtol=RTOL, atol=0)
    pub = published(detector, profile).loc[name]
    assert fs.score == pytest.approx(pub.Score, rel=RTOL, abs=1e-12)
    assert fs.weights.sum() == pytest.approx(fs.score, abs=1e-12)
    assert (fs.tp, fs.fp, fs.fn, fs.tn) == (pub.TP, pub.FP, pub.FN, pub.TN)
    assert (out["label"].to_numpy() == 1).sum() == fs.tp + fs.fn  # no window reaches into probation here


def test_brief_reference_numbers(corpus, thresholds):
    """The per-file numbers quoted in SOURCES.md for numenta's standard profile."""
    frame, windows = corpus["realKnownCause/nyc_taxi.csv"]
    scores = raw_output("numenta", "realKnownCause/nyc_taxi.csv")["anomaly_score"].to_numpy()
    fs = nab.score_file(
        frame["timestamp"], scores >= thresholds["numenta"]["standard"]["threshold"], windows, nab.PROFILES["standard"]
    )
    assert (round(fs.score, 4), fs.tp, fs.fp, fs.fn) == (2.4357, 7, 1, 1028)


@pytest.mark.parametrize("profile", sorted(nab.PROFILES))
def test_null_and_perfect_detectors(corpus, profile):
    p = nab.PROFILES[profile]
    null = nab.score_detector(corpus, {n: np.zeros(len(f)) for n, (f, _) in corpus.items()}, p, threshold=0.5)
    assert null.score == 0.0 and null.raw == null.null == -p.fn * 116 and null.perfect == p.tp * 116
    pub = published("null", profile)
    for name, fs in null.files.items():  # probation and window rows of all 58 files, as NAB counts them
        row = pub.loc[name]
        assert (fs.score, fs.tp, fs.fp, fs.fn, fs.tn) == (row.Score, row.TP, row.FP, row.FN, row.TN), name
    perfect = nab.score_detector(corpus, window_starts(corpus), p, threshold=0.5)
    assert perfect.score == pytest.approx(100.0, abs=1e-9) and perfect.fp == 0
    tuned = nab.score_detector(corpus, window_starts(corpus), p)
    assert tuned.threshold == 1.0 and tuned.score == pytest.approx(100.0, abs=1e-9)


def test_normalisation_reproduces_the_scoreboard():
    """final_results.json is the published raw totals (Totals rows) normalised by null -A_fn*116 and perfect A_tp*116."""
    final = json.loads((ROOT / "results" / "final_results.json").read_text())
    checked = 0
    for detector in sorted(final):
        if detector == "random":  # its Totals rows come from another random run than final_results.json
            continue
        for profile, p in nab.PROFILES.items():
            path = ROOT / "results" / detector / f"{detector}_{profile}_scores.csv"
            if path.exists():
                raw = pd.read_csv(path).set_index("Detector").loc["Totals", "Score"]
                assert nab.normalise(raw, -p.fn * 116, p.tp * 116) == pytest.approx(final[detector][profile], abs=1e-8)
                checked += 1
    assert checked >= 14 * 3
    assert final["numenta"]["standard"] == pytest.approx(70.101, abs=1e-3)


def test_threshold_sweep_matches_brute_force(corpus):
    """The one-pass sweep finds the same best threshold as scoring every distinct score value (real numenta scores,
    rounded so that brute force stays quick), and the highest threshold on ties."""
    sub = {n: corpus[n] for n in RAW_FILES}
    scores = {n: np.round(raw_output("numenta", n)["anomaly_score"].to_numpy(), 2) for n in RAW_FILES}
    for p in nab.PROFILES.values():
        tuned = nab.score_detector(sub, scores, p)
        layouts = {n: nab._layout(f["timestamp"], w) for n, (f, w) in sub.items()}
        candidates = np.unique(np.concatenate(list(scores.values())))[::-1]
        brute = [sum(nab._score(layouts[n], scores[n] >= t, p).score for n in sub) for t in candidates]
        best = int(np.argmax(np.round(brute, 12)))
        assert tuned.threshold == candidates[best]
        assert tuned.raw == pytest.approx(brute[best], abs=1e-12)


def test_threshold_sweep_is_fast_on_the_whole_corpus(corpus):
    rng = np.random.default_rng(0)
    scores = {n: rng.random(len(f)) for n, (f, _) in corpus.items()}
    started = time.perf_counter()
    tuned = nab.score_detector(corpus, scores, nab.PROFILES["standard"])
    assert time.perf_counter() - started < 5.0
    for t in (tuned.threshold, np.nextafter(tuned.threshold, 2), np.nextafter(tuned.threshold, -1), 0.99, 0.999):
        assert nab.score_detector(corpus, scores, nab.PROFILES["standard"], threshold=t).raw <= tuned.raw + 1e-12
    assert tuned.tp + tuned.fp + tuned.fn + tuned.tn == 365_558 - sum(nab.probation_rows(len(f)) for f, _ in corpus.values())


def test_wrong_length_is_a_one_line_value_error(corpus):
    frame, windows = corpus["realKnownCause/nyc_taxi.csv"]
    with pytest.raises(ValueError, match=r"shape \(10319,\) but the file has 10320 rows") as err:
        nab.score_file(frame["timestamp"], np.zeros(len(frame) - 1, dtype=bool), windows, nab.PROFILES["standard"])
    assert "\n" not in str(err.value)
    sub = {"realKnownCause/nyc_taxi.csv": corpus["realKnownCause/nyc_taxi.csv"]}
    with pytest.raises(ValueError, match="nyc_taxi.csv: anomaly scores have shape") as err:
        nab.score_detector(sub, {"realKnownCause/nyc_taxi.csv": np.zeros(5)}, nab.PROFILES["standard"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no anomaly scores for 1 corpus file"):
        nab.score_detector(sub, {}, nab.PROFILES["standard"])
