"""Data-quality checks on the feature tables: row counts, missing values, ranges, duplicates and freshness."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from clickhouse_connect.driver.client import Client

# columns that must lie in a closed range; every other numeric column must be >= 0
BOUNDED = {
    "brand_loyalty_score": (0.0, 1.0),
    "avg_scroll_depth": (0.0, 1.0),
    "recency_score": (0.0, 1.0),
    "newsletter_signup_rate": (0.0, 1.0),
    "engagement_score": (0.0, 100.0),
    "is_subscriber": (0, 1),
    "has_newsletter": (0, 1),
}
NUMERIC = ("UInt", "Int", "Float")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, warn or fail
    detail: str


@dataclass
class QualityReport:
    """What the checks found for one table and date; ``ok`` is False when any check failed."""

    table: str
    date: date
    rows: int
    checks: list[Check] = field(default_factory=list)
    missing: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([c.__dict__ for c in self.checks])

    def summary(self) -> str:
        bad = [c for c in self.checks if c.status != "pass"]
        head = f"{self.table} {self.date}: {self.rows} rows, {len(self.checks) - len(bad)}/{len(self.checks)} checks passed"
        return "\n".join([head] + [f"  {c.status.upper()} {c.name}: {c.detail}" for c in bad])


def _columns(client: Client, table: str) -> list[tuple[str, str]]:
    return client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} ORDER BY position",
        parameters={"t": table},
    ).result_rows


def check_user_features(client: Client, feature_date: date) -> QualityReport:
    """Check customer_user_features for one date, all in one aggregation query."""
    table = "customer_user_features"
    cols = [(n, t) for n, t in _columns(client, table) if n not in ("feature_date", "computed_at")]
    numeric = [n for n, t in cols if t.startswith(NUMERIC)]
    exprs = ["count()", "uniqExact(user_id)"]
    for name, type_ in cols:
        if type_.startswith("Nullable"):
            exprs.append(f"countIf(isNull({name}))")
        elif type_.startswith("Float"):
            exprs.append(f"countIf(NOT isFinite({name}))")
        elif type_ == "UUID":
            exprs.append(f"countIf({name} = toUUID('00000000-0000-0000-0000-000000000000'))")
        else:
            exprs.append(f"countIf(empty(toString({name})))")
    exprs += [f"min({n})" for n in numeric] + [f"max({n})" for n in numeric]
    row = client.query(
        f"SELECT {', '.join(exprs)} FROM {table} WHERE feature_date = {{d:Date}}", parameters={"d": feature_date}
    ).result_rows[0]
    rows, unique_users = int(row[0]), int(row[1])
    report = QualityReport(table, feature_date, rows)
    if rows == 0:
        report.checks.append(Check("row_count", "fail", f"no rows for {feature_date}: run `ownlens-ml features build --date {feature_date}`"))
        return report
    report.checks.append(Check("row_count", "pass", f"{rows} rows"))
    report.checks.append(Check(
        "unique_users", "pass" if unique_users == rows else "fail",
        f"{rows - unique_users} duplicate user rows" if unique_users != rows else "one row per user",
    ))
    missing = row[2:2 + len(cols)]
    for (name, _), count in zip(cols, missing):
        report.missing[name] = count / rows
    worst = {n: f for n, f in report.missing.items() if f > 0}
    allowed = {"preferred_category_id"}  # users who only bounced have read no category
    hard = {n: f for n, f in worst.items() if n not in allowed}
    report.checks.append(Check(
        "missing_values", "fail" if hard else ("warn" if worst else "pass"),
        ", ".join(f"{n} {f:.1%}" for n, f in sorted(worst.items(), key=lambda x: -x[1])) or "none",
    ))
    mins = row[2 + len(cols):2 + len(cols) + len(numeric)]
    maxs = row[2 + len(cols) + len(numeric):]
    out_of_range = []
    for name, lo, hi in zip(numeric, mins, maxs):
        report.ranges[name] = (lo, hi)
        bound_lo, bound_hi = BOUNDED.get(name, (0, None))
        if lo < bound_lo or (bound_hi is not None and hi > bound_hi):
            out_of_range.append(f"{name} in [{lo:.4g}, {hi:.4g}]")
    report.checks.append(Check("value_ranges", "fail" if out_of_range else "pass", "; ".join(out_of_range) or "all within bounds"))
    last_session = client.command(
        "SELECT toDate(max(session_start)) FROM customer_sessions WHERE session_start < {d:Date}", parameters={"d": feature_date}
    )
    gap = (feature_date - date.fromisoformat(str(last_session))).days if last_session else None
    report.checks.append(Check(
        "freshness", "pass" if gap == 1 else "warn",
        f"latest session before {feature_date} is {last_session}" + ("" if gap == 1 else f" ({gap} days earlier: data may be late)"),
    ))
    return report
