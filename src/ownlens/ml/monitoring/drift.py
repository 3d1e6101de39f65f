"""Drift of model inputs and outputs between two dates, computed inside ClickHouse.

Per numeric input: PSI and Jensen-Shannon divergence over ten bins cut at the reference date's deciles,
and the two-sample Kolmogorov-Smirnov test; per categorical input: PSI and JS over its values. The same
for a model's stored predictions, with the thresholds below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from clickhouse_connect.driver.client import Client

from ownlens.ml.models.spec import Thresholds

# Inputs: PSI 0.1 warns and 0.25 alerts, as is common practice; KS 0.1 warns, 0.2 alerts. Predictions summarise
# every input through the model, so they get tighter bounds, set from simulated twins (benchmarks/drift.py,
# 20k users, two weeks after the reference): without drift predictions moved by KS <= 0.04 and PSI <= 0.01;
# after an injected 40 % activity drop by KS 0.06 on day 4, 0.08 on day 5, up to 0.09. Single inputs moved
# organically by up to KS 0.12 (new users filling the history windows), hence their looser bounds.
# A model's declaration may set its own (``input_thresholds``, ``prediction_thresholds``).
INPUT_THRESHOLDS = Thresholds(psi_warn=0.1, psi_alert=0.25, ks_warn=0.1, ks_alert=0.2)
PREDICTION_THRESHOLDS = Thresholds(psi_warn=0.05, psi_alert=0.1, ks_warn=0.05, ks_alert=0.075)
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


def statistics(values: str, kind: str, with_ks: bool) -> str:
    """PSI, JS and (numeric, both samples non-empty) the Kolmogorov-Smirnov test of ``values`` in one query."""
    binned = numeric_bins(values) if kind == "numeric" else categorical_bins(values)
    ks = f"(SELECT kolmogorovSmirnovTest('two-sided')(v, toUInt8(NOT is_ref)) FROM ({values}))" if with_ks else "NULL"
    return f"SELECT d.psi, d.js, {ks} FROM ({divergences(binned)}) AS d"


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

    trending: bool = False  # grows with time by construction (tenure, lifetime totals): reported, never alerted
    thresholds: Thresholds = field(default=INPUT_THRESHOLDS, repr=False)

    @property
    def status(self) -> str:
        t = self.thresholds
        ks = (self.ks_statistic or 0) if self.ks_p_value is not None and self.ks_p_value < t.ks_p else 0.0
        if self.psi >= t.psi_alert or ks >= t.ks_alert:
            level = "alert"
        elif self.psi >= t.psi_warn or ks >= t.ks_warn:
            level = "warning"
        else:
            return "ok"
        return "trend" if self.trending else level


def column_drift(client: Client, values_sql: str, params: dict, name: str, kind: str,
                 thresholds: Thresholds = INPUT_THRESHOLDS, counts: tuple[int, int] | None = None) -> Drift:
    """Drift of ``values_sql``'s column ``v`` (rows flagged ``is_ref``): all of it computed in ClickHouse.
    ``counts`` (reference and current rows), when the caller knows them, saves a query."""
    counts = counts or client.query(sizes(values_sql), parameters=params).result_rows[0]
    with_ks = kind == "numeric" and min(counts) > 0  # the test needs both samples
    psi, js, ks = client.query(statistics(values_sql, kind, with_ks), parameters={**params, "eps": EPS}).result_rows[0]
    ks_stat = ks_p = None
    if with_ks:
        ks_stat, ks_p = (ks["d_statistic"], ks["p_value"]) if isinstance(ks, dict) else ks
    return Drift(name, kind, float(psi or 0.0), float(js or 0.0), ks_stat, ks_p, int(counts[0]), int(counts[1]),
                 thresholds=thresholds)


def feature_drift(client: Client, table: str, columns: list[tuple[str, str, str]], reference: date, current: date,
                  date_column: str = "feature_date", where: str = "1") -> list[Drift]:
    """Drift of each (name, SQL expression over ``uf``, kind) of ``table`` (alias ``uf``) between two of its dates;
    ``where`` (SQL over ``uf``) keeps some rows, e.g. a model's population."""
    params = {"ref": reference, "cur": current, "table": table, "date_column": date_column}
    rows = (f"FROM {{table:Identifier}} AS uf WHERE uf.{{date_column:Identifier}} IN ({{ref:Date}}, {{cur:Date}}) AND ({where})")
    counts = client.query(sizes(f"SELECT uf.{{date_column:Identifier}} = {{ref:Date}} AS is_ref {rows}"), parameters=params).result_rows[0]
    out = []
    for name, expression, kind in columns:  # every column has the same rows: counted once
        value = f"toFloat64({expression})" if kind == "numeric" else f"ifNull(toString({expression}), '')"
        values_sql = f"SELECT {value} AS v, uf.{{date_column:Identifier}} = {{ref:Date}} AS is_ref {rows}"
        out.append(column_drift(client, values_sql, params, name, kind, counts=counts))
    return out
