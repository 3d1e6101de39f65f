"""Numenta Anomaly Benchmark (NAB v1.1) scoring, written from the published rules so that our anomaly detectors can be
scored on the NAB corpus (``shared/datasets/anomaly_nab``) and compared with NAB's scoreboard.

The rules, with the conventions that reproduce NAB's published per-row ``S(t)_*`` columns and per-file scores exactly
(checked in ``tests/test_nab.py`` against the raw numenta and windowedGaussian outputs):

* A row is a detection when its anomaly score is ``>= threshold``.
* Probation: the first ``min(floor(0.15 * rows), 750)`` rows are not scored; detections there are ignored and those
  rows are left out of the TP/FP/FN/TN counts.
* A window is the contiguous run of rows from the first to the last row whose timestamp lies in ``[start, end]``
  (both ends inclusive). ``L`` is its number of rows.
* Only a window's first detection counts. At row offset ``k`` from the window's first row (``0 <= k < L``) its position
  is ``y = k / L - 1``: measured from one row past the window's right end and normalised by the window length, so the
  first row is ``y = -1`` and the last ``y = -1/L``. It is worth ``A_tp * sigma(y) / sigma(-1)`` with
  ``sigma(y) = 2 / (1 + exp(5 y)) - 1``: the division makes a detection on a window's first row worth exactly ``A_tp``
  (not 0.9866 A_tp), which is why a perfect detector scores ``A_tp`` per window.
* A window with no detection costs ``-A_fn``.
* A detection outside every window, ``d`` rows after the last row of the most recent window before it, is worth
  ``A_fp * sigma(d / (L - 1))`` with that window's ``L`` (note ``L - 1`` here, ``L`` above); with no earlier window it
  is worth ``-A_fp``. Later detections inside a window are worth 0 (but count as TP rows).
* NAB places a window's score on the window's first row, whether detected or not; ``FileScore.weights`` does the same,
  so it equals the published ``S(t)_<profile>`` column and sums to the file's score.
* Normalised score = ``100 * (S - S_null) / (S_perfect - S_null)`` with S, S_null = ``-A_fn * windows`` and
  S_perfect = ``A_tp * windows`` each summed over the whole corpus (not averaged per file).

Choices the corpus does not exercise (no official window overlaps the probation period or another window, none is
empty or one row long): a window's rows in probation cannot detect but the window is still scored; a window covering
no row is dropped; overlapping windows are an error; a one-row window uses ``d / 1`` for the false positives after it.
Threshold optimisation takes, over the distinct anomaly scores, the threshold with the highest summed raw score for
the profile, the highest such threshold on ties, and ``inf`` (detect nothing) when no threshold beats that.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750  # NAB: 15% of the file, but never more than 15% of 5,000 rows

Window = tuple[pd.Timestamp, pd.Timestamp]
Corpus = Mapping[str, tuple[pd.DataFrame, list[Window]]]


@dataclass(frozen=True)
class Profile:
    """A NAB cost matrix: what a true positive earns and a false positive or a missed window costs (tn is unused by NAB)."""

    tp: float
    fp: float
    fn: float
    tn: float = 1.0


# NAB's config/profiles.json, so that scoring needs no copy of NAB; load_profiles reads (and tests check) the file.
PROFILES: dict[str, Profile] = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class FileScore:
    """One file's raw NAB score, its row counts (after probation) and the null/perfect scores it is normalised by."""

    score: float
    tp: int
    fp: int
    fn: int
    tn: int
    null: float
    perfect: float
    weights: np.ndarray = field(repr=False, compare=False)  # per-row contributions, NAB's S(t) column; sums to score


@dataclass(frozen=True)
class Result:
    """A detector's NAB result for one profile: the normalised score (0 = null, 100 = perfect) and what it comes from."""

    score: float
    threshold: float
    raw: float
    null: float
    perfect: float
    tp: int
    fp: int
    fn: int
    tn: int
    files: dict[str, FileScore] = field(repr=False)


def load_profiles(root: str | Path) -> dict[str, Profile]:
    """The profiles of a NAB copy's config/profiles.json."""
    raw = json.loads((Path(root) / "config" / "profiles.json").read_text())
    return {
        name: Profile(tp=m["tpWeight"], fp=m["fpWeight"], fn=m["fnWeight"], tn=m.get("tnWeight", 1.0))
        for name, p in raw.items()
        for m in [p["CostMatrix"]]
    }


def load_corpus(root: str | Path, files: str | Iterable[str] | None = None) -> dict[str, tuple[pd.DataFrame, list[Window]]]:
    """NAB's series and official windows (labels/combined_windows.json), by relative file name.

    ``files`` selects: a name, a prefix such as ``"realTweets/"``, a glob such as ``"real*/*taxi*"``, or a list of these.
    """
    root = Path(root)
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    patterns = None if files is None else [files] if isinstance(files, str) else list(files)

    def wanted(name: str) -> bool:
        return patterns is None or any(name.startswith(p) or fnmatch.fnmatchcase(name, p) for p in patterns)

    corpus = {}
    for name in sorted(n for n in labels if wanted(n)):
        frame = pd.read_csv(root / "data" / name)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="%Y-%m-%d %H:%M:%S")
        corpus[name] = (frame, [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in labels[name]])
    if patterns is not None and not corpus:
        raise ValueError(f"no NAB file matches {patterns!r}")
    return corpus


def _sigma(y: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid 2 / (1 + exp(5 y)) - 1: +1 far before a window's end, 0 at it, -1 far after it."""
    return 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 100.0))) - 1.0  # min: exp(500) is finite and sigma is -1.0 already


_SIGMA_START = float(_sigma(-1.0))


def probation_rows(rows: int) -> int:
    """How many leading rows NAB leaves unscored."""
    return min(math.floor(PROBATION_FRACTION * rows), PROBATION_CAP)


@dataclass(frozen=True)
class _Layout:
    """Where a file's windows and probation are, and each row's false-positive weight per unit A_fp."""

    rows: int
    probation: int
    starts: np.ndarray
    ends: np.ndarray  # inclusive
    in_window: np.ndarray
    fp_unit: np.ndarray


def _layout(timestamps, windows: Sequence[Window]) -> _Layout:
    ts = pd.DatetimeIndex(pd.to_datetime(np.asarray(timestamps))).asi8
    rows = len(ts)
    bounds = []
    for start, end in windows:
        inside = np.flatnonzero((ts >= pd.Timestamp(start).value) & (ts <= pd.Timestamp(end).value))
        if len(inside):
            bounds.append((int(inside[0]), int(inside[-1])))
    bounds.sort()
    if any(b[0] <= a[1] for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"NAB windows must not overlap: row ranges {bounds}")
    starts = np.array([a for a, _ in bounds], dtype=np.int64)
    ends = np.array([b for _, b in bounds], dtype=np.int64)
    in_window = np.zeros(rows, dtype=bool)
    for a, b in bounds:
        in_window[a : b + 1] = True
    i = np.arange(rows)
    before = np.searchsorted(ends, i, side="left") - 1  # the last window ending before row i, -1 when none
    fp_unit = np.full(rows, -1.0)
    after = before >= 0
    j = before[after]
    fp_unit[after] = _sigma((i[after] - ends[j]) / np.maximum(ends[j] - starts[j], 1))
    return _Layout(rows, probation_rows(rows), starts, ends, in_window, fp_unit)


def _tp_weights(offsets: np.ndarray, length: int, profile: Profile) -> np.ndarray:
    return profile.tp * _sigma(offsets / length - 1.0) / _SIGMA_START


def _score(layout: _Layout, detections: np.ndarray, profile: Profile) -> FileScore:
    det = detections.copy()
    det[: layout.probation] = False
    weights = np.zeros(layout.rows)
    outside = det & ~layout.in_window
    weights[outside] = profile.fp * layout.fp_unit[outside]
    for a, b in zip(layout.starts, layout.ends):
        hits = np.flatnonzero(det[a : b + 1])
        weights[a] += _tp_weights(hits[0], b - a + 1, profile) if len(hits) else -profile.fn
    scored = slice(layout.probation, None)
    tp = int((det & layout.in_window)[scored].sum())
    fp = int(outside[scored].sum())
    fn = int((~det & layout.in_window)[scored].sum())
    windows = len(layout.starts)
    return FileScore(
        score=float(weights.sum()),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=layout.rows - layout.probation - tp - fp - fn,
        null=-profile.fn * windows,
        perfect=profile.tp * windows,
        weights=weights,
    )


def score_file(timestamps, detections, windows: Sequence[Window], profile: Profile) -> FileScore:
    """NAB's raw score of one file's detections (a bool per row) against its label windows."""
    det = np.asarray(detections, dtype=bool)
    if det.shape != (len(timestamps),):
        raise ValueError(f"detections has shape {det.shape} but the file has {len(timestamps)} rows")
    return _score(_layout(timestamps, windows), det, profile)


def normalise(raw: float, null: float, perfect: float) -> float:
    """NAB's normalised score: 0 for the null detector, 100 for the perfect one (NaN when the corpus has no window)."""
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else float("nan")


def _checked_scores(corpus: Corpus, scores_by_file: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = sorted(set(corpus) - set(scores_by_file))
    if missing:
        raise ValueError(f"no anomaly scores for {len(missing)} corpus file(s), e.g. {missing[0]}")
    out = {}
    for name, (frame, _) in corpus.items():
        s = np.asarray(scores_by_file[name], dtype=float)
        if s.shape != (len(frame),):
            raise ValueError(f"{name}: anomaly scores have shape {s.shape} but the file has {len(frame)} rows")
        out[name] = s
    return out


def _events(layout: _Layout, scores: np.ndarray, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """(threshold, change of the file's raw score when the threshold drops to it), so a corpus sweep is one cumsum.

    A false positive's weight does not depend on other detections, so each is one event at its own score. A window's
    score depends only on its first detection: that moves earlier exactly at the window's running-maximum records,
    so each record is one event (its weight minus that of the later record it replaces, or minus -A_fn for the last).
    """
    s = np.where(np.isnan(scores), -np.inf, scores)
    s[: layout.probation] = -np.inf
    outside = ~layout.in_window & np.isfinite(s)
    thresholds, deltas = [s[outside]], [profile.fp * layout.fp_unit[outside]]
    for a, b in zip(layout.starts, layout.ends):
        vals = s[a : b + 1]
        running = np.maximum.accumulate(vals)
        records = np.flatnonzero(running > np.concatenate(([-np.inf], running[:-1])))
        if len(records):
            w = _tp_weights(records, b - a + 1, profile)
            thresholds.append(vals[records])
            deltas.append(w - np.append(w[1:], -profile.fn))
    return np.concatenate(thresholds), np.concatenate(deltas)


def _optimal_threshold(layouts: dict[str, _Layout], scores: dict[str, np.ndarray], profile: Profile) -> float:
    base = sum(-profile.fn * len(lay.starts) for lay in layouts.values())
    parts = [_events(layouts[name], scores[name], profile) for name in layouts]
    t = np.concatenate([p[0] for p in parts])
    d = np.concatenate([p[1] for p in parts])
    if not len(t):
        return math.inf
    order = np.argsort(-t, kind="stable")
    t, total = t[order], base + np.cumsum(d[order])
    last = np.append(t[1:] != t[:-1], True)  # the score at a threshold counts every event with that score
    t, total = t[last], total[last]
    best = int(np.argmax(total))  # the first maximum: the highest threshold among ties
    return float(t[best]) if total[best] > base else math.inf


def score_detector(
    corpus: Corpus, scores_by_file: Mapping[str, np.ndarray], profile: Profile, threshold: float | None = None
) -> Result:
    """A detector's NAB result on ``corpus`` from its anomaly scores, at ``threshold`` or, when None, at the threshold
    that maximises the corpus's summed raw score for this profile (as NAB tunes every detector)."""
    scores = _checked_scores(corpus, scores_by_file)
    layouts = {name: _layout(frame["timestamp"], windows) for name, (frame, windows) in corpus.items()}
    if threshold is None:
        threshold = _optimal_threshold(layouts, scores, profile)
    files = {name: _score(layouts[name], scores[name] >= threshold, profile) for name in corpus}
    raw = math.fsum(f.score for f in files.values())
    null = math.fsum(f.null for f in files.values())
    perfect = math.fsum(f.perfect for f in files.values())
    return Result(
        score=normalise(raw, null, perfect),
        threshold=float(threshold),
        raw=raw,
        null=null,
        perfect=perfect,
        tp=sum(f.tp for f in files.values()),
        fp=sum(f.fp for f in files.values()),
        fn=sum(f.fn for f in files.values()),
        tn=sum(f.tn for f in files.values()),
        files=files,
    )
