"""Drift of model inputs and outputs between a reference (one date or several, pooled) and a date, computed
inside ClickHouse.

Per numeric input: the Wasserstein distance in standard deviations of the reference (what decides), PSI and
Jensen-Shannon divergence over ten bins cut at the reference's deciles, and the two-sample Kolmogorov-Smirnov
test; per categorical input: PSI (what decides) and JS over its values. The same for a model's stored
predictions, with the thresholds below. A reference of one value only (a window the warehouse's history did not
fill yet, say) is no reference: such a column is ``skipped``, never alerted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from clickhouse_connect.driver.client import Client

from ownlens.ml.models.spec import Thresholds

# Inputs warn at 0.1 standard deviations of Wasserstein distance (Evidently's drift threshold) and alert at 0.2; a
# mean shift of half a standard deviation is 0.5, a log-normal whose log-sd goes from 1 to 1.25 (same median) 0.28.
# Categorical inputs: PSI 0.1 warns and 0.25 alerts, as is common practice. Predictions summarise every input
# through the model, so they get tighter bounds, set from simulated twins (benchmarks/drift.py; 3k users,
# reference 2026-02-23): without drift the churn predictions moved by at most 0.043, the largest non-growing input
# by 0.07; after an injected 40 % activity drop predictions moved by 0.11 on day 8 and 0.16 on day 15,
# sessions_last_7d by 0.25. A model's declaration may set its own (``input_thresholds``, ``prediction_thresholds``).
INPUT_THRESHOLDS = Thresholds()
PREDICTION_THRESHOLDS = Thresholds(wasserstein_warn=0.06, wasserstein_alert=0.1, psi_warn=0.05, psi_alert=0.1)
EPS = 1e-4


def divergences(binned: str) -> str:
    """PSI and Jensen-Shannon divergence over the bins of ``binned`` (bin, is_ref, n): shares per bin of the
    reference (r) and the current (c) sample, then the sums over the bins."""
    return f"""
SELECT
    sum((c - r) * log((c + {{eps:Float64}}) / (r + {{eps:Float64}}))) AS psi,
    0.5 * sum(if(r > 0, r * log(r / ((r + c) / 2)), 0)) + 0.5 * sum(if(c > 0, c * log(c / ((r + c) / 2)), 0)) AS js
FROM (
    SELECT bin, sumIf(n, is_ref) / any(total_ref) AS r, sumIf(n, NOT is_ref) / any(total_cur) AS c
    FROM (
        SELECT bin, is_ref, n,
               sum(if(is_ref, n, 0)) OVER () AS total_ref, sum(if(NOT is_ref, n, 0)) OVER () AS total_cur
        FROM ({binned})
    )
    GROUP BY bin
)
"""


def numeric_bins(values: str) -> str:
    """``values`` (v, is_ref) counted in ten bins cut at the reference sample's deciles."""
    return f"""
SELECT arrayCount(e -> v > e, (SELECT quantilesExact(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)(v) FROM ({values}) WHERE is_ref))
       AS bin, is_ref, count() AS n
FROM ({values})
GROUP BY bin, is_ref
"""


def categorical_bins(values: str) -> str:
    """``values`` (v, is_ref) counted by value."""
    return f"SELECT toString(v) AS bin, is_ref, count() AS n FROM ({values}) GROUP BY bin, is_ref"


def wasserstein(values: str) -> str:
    """The Wasserstein-1 distance between the two samples of ``values`` (v, is_ref), exactly: the area between their
    empirical distribution functions, summed over the gaps between consecutive distinct values; and the
    reference's (population) standard deviation, its unit."""
    return f"""
SELECT sum(abs(fr - fc) * (next_v - v)) AS w, any(sd) AS sd
FROM (
    SELECT v, sum(nr) OVER w / sum(nr) OVER () AS fr, sum(nc) OVER w / sum(nc) OVER () AS fc,
           any(v) OVER (ORDER BY v ROWS BETWEEN 1 FOLLOWING AND 1 FOLLOWING) AS next_v,
           (SELECT stddevPopIf(v, is_ref) FROM ({values})) AS sd
    FROM (SELECT v, countIf(is_ref) AS nr, countIf(NOT is_ref) AS nc FROM ({values}) GROUP BY v)
    WINDOW w AS (ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
"""


def statistics(values: str, kind: str, with_ks: bool) -> str:
    """PSI, JS and (numeric, both samples non-empty) the Kolmogorov-Smirnov test and the Wasserstein distance (with
    the reference's standard deviation) of ``values``, in one query."""
    binned = numeric_bins(values) if kind == "numeric" else categorical_bins(values)
    ks = f"(SELECT kolmogorovSmirnovTest('two-sided')(v, toUInt8(NOT is_ref)) FROM ({values}))" if with_ks else "NULL"
    w = f"(SELECT (w, sd) FROM ({wasserstein(values)}))" if with_ks else "NULL"
    return f"SELECT d.psi, d.js, {ks}, {w} FROM ({divergences(binned)}) AS d"


def sizes(values: str) -> str:
    return f"SELECT countIf(is_ref), countIf(NOT is_ref) FROM ({values})"


@dataclass(frozen=True)
class Drift:
    """Drift of one column between the reference and the current sample."""

    name: str
    kind: str  # numeric | categorical
    psi: float
    js: float
    ks_statistic: float | None
    ks_p_value: float | None
    reference_rows: int
    current_rows: int
    wasserstein: float | None = None  # numeric: in standard deviations of the reference

    trending: bool = False  # grows with time by construction (tenure, lifetime totals): reported, never alerted
    skipped: str = ""  # why the column was not compared (e.g. the reference's history was too short for it)
    thresholds: Thresholds = field(default=INPUT_THRESHOLDS, repr=False)
    references: tuple[date, ...] = ()  # the reference dates it was compared on (inputs: those with its history)

    @property
    def size(self) -> float:
        """The statistic that decides: Wasserstein distance (numeric) or PSI (categorical); NaN when skipped."""
        if self.kind == "numeric":
            return float("nan") if self.wasserstein is None else self.wasserstein
        return self.psi

    @property
    def status(self) -> str:
        if self.skipped:
            return "skipped"
        t = self.thresholds
        warn, alert = (t.wasserstein_warn, t.wasserstein_alert) if self.kind == "numeric" else (t.psi_warn, t.psi_alert)
        if self.size >= alert:
            level = "alert"
        elif self.size >= warn:
            level = "warning"
        else:
            return "ok"
        return "trend" if self.trending else level

    @property
    def metric(self) -> str:
        return "wasserstein" if self.kind == "numeric" else "psi"

    @property
    def limits(self) -> tuple[float, float]:
        """The warning and alert thresholds of the statistic that decides."""
        t = self.thresholds
        return (t.wasserstein_warn, t.wasserstein_alert) if self.kind == "numeric" else (t.psi_warn, t.psi_alert)


def column_drift(client: Client, values_sql: str, params: dict, name: str, kind: str,
                 thresholds: Thresholds = INPUT_THRESHOLDS, counts: tuple[int, int] | None = None) -> Drift:
    """Drift of ``values_sql``'s column ``v`` (rows flagged ``is_ref``): all of it computed in ClickHouse.
    ``counts`` (reference and current rows), when the caller knows them, saves a query."""
    counts = counts or client.query(sizes(values_sql), parameters=params).result_rows[0]
    with_ks = kind == "numeric" and min(counts) > 0  # the test needs both samples
    psi, js, ks, w = client.query(statistics(values_sql, kind, with_ks), parameters={**params, "eps": EPS}).result_rows[0]
    ks_stat = ks_p = wasserstein_sd = None
    skipped = "" if with_ks or kind != "numeric" else "no rows in one of the samples"
    if with_ks:
        ks_stat, ks_p = (ks["d_statistic"], ks["p_value"]) if isinstance(ks, dict) else ks
        distance, sd = (w["w"], w["sd"]) if isinstance(w, dict) else w
        if sd and sd > 0:
            wasserstein_sd = float(distance) / float(sd)
        else:  # nothing to measure a change against: a history window not yet filled, a constant
            skipped = "the reference holds one value only"
    return Drift(name, kind, float(psi or 0.0), float(js or 0.0), ks_stat, ks_p, int(counts[0]), int(counts[1]),
                 wasserstein_sd, skipped=skipped, thresholds=thresholds)


def feature_drift(client: Client, table: str, columns: list[tuple[str, str, str]], reference, current: date,
                  date_column: str = "feature_date", where: str = "1") -> list[Drift]:
    """Drift of each (name, SQL expression over ``uf``, kind) of ``table`` (alias ``uf``) between ``reference`` (a
    date, or several pooled) and ``current``; ``where`` (SQL over ``uf``) keeps some rows, e.g. a model's population."""
    references = sorted({reference} if isinstance(reference, date) else set(reference))
    params = {"refs": references, "cur": current, "table": table, "date_column": date_column}
    counts = client.query(sizes(column_values("1", "numeric", where)), parameters=params).result_rows[0]
    return [replace(column_drift(client, column_values(expression, kind, where), params, name, kind, counts=counts),
                    references=tuple(references))
            for name, expression, kind in columns]  # every column has the same rows: counted once


def column_values(expression: str, kind: str, where: str = "1") -> str:
    """SQL of one input's values (``v``) on the current date and the reference dates (``is_ref``) of table
    ``{table:Identifier}`` (alias ``uf``, dated by ``{date_column:Identifier}``): what :func:`column_drift` and
    :func:`distribution` read."""
    is_ref = "has({refs:Array(Date)}, uf.{date_column:Identifier})"
    value = f"toFloat64({expression})" if kind == "numeric" else f"ifNull(toString({expression}), '')"
    return (f"SELECT {value} AS v, {is_ref} AS is_ref FROM {{table:Identifier}} AS uf "
            f"WHERE (uf.{{date_column:Identifier}} = {{cur:Date}} OR {is_ref}) AND ({where})")


DECILE_EDGES = "SELECT quantilesExact(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)(v) FROM ({values}) WHERE is_ref"


def distribution(client: Client, values_sql: str, params: dict, kind: str, top: int = 12) -> list[tuple[str, float, float]]:
    """The two samples side by side, as (bin, reference share, current share): numbers in the ten bins cut at the
    reference's deciles (what PSI compares), categories by value (the ``top`` most common, then "other")."""
    if kind == "numeric":
        edges = client.query(DECILE_EDGES.format(values=values_sql), parameters=params).result_rows[0][0]
        labels = [f"≤ {edges[0]:.3g}", *[f"{a:.3g} – {b:.3g}" for a, b in zip(edges, edges[1:])], f"> {edges[-1]:.3g}"]
        binned = numeric_bins(values_sql)
    else:
        binned = categorical_bins(values_sql)
    counts: dict[str, list[float]] = {}
    for bin_, is_ref, n in client.query(binned, parameters=params).result_rows:
        counts.setdefault(str(bin_), [0.0, 0.0])[0 if is_ref else 1] += n
    ref_total, cur_total = (max(sum(c[i] for c in counts.values()), 1) for i in (0, 1))
    shares = [(b, r / ref_total, c / cur_total) for b, (r, c) in counts.items()]
    if kind == "numeric":
        return sorted(((labels[int(b)], r, c) for b, r, c in shares), key=lambda x: labels.index(x[0]))
    shares.sort(key=lambda x: -(x[1] + x[2]))
    if len(shares) > top:
        rest = shares[top:]
        shares = shares[:top] + [("other", sum(x[1] for x in rest), sum(x[2] for x in rest))]
    return [("(empty)" if b == "" else b, r, c) for b, r, c in shares]
