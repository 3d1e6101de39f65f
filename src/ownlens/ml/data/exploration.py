"""The data-exploration report (seed 003): summary, statistics, distributions, correlations and target rates, as HTML."""

from __future__ import annotations

import base64
import html
import io
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import latest_feature_date, query_frame
from ownlens.ml.data.quality import check_user_features
from ownlens.ml.errors import InvalidInput
from ownlens.ml.warehouse import table_exists

SUMMARY = """
SELECT count() AS sessions, uniqExact(user_id) AS users, toDate(min(session_start)) AS first_day,
       toDate(max(session_start)) AS last_day, sum(total_events) AS events, round(avg(session_duration_sec), 1) AS avg_session_sec,
       sum(subscriptions) AS subscriptions, round(sum(ad_revenue), 2) AS ad_revenue_eur
FROM customer_sessions
"""

EVENTS_BY_TYPE = "SELECT event_type, count() AS events FROM customer_events GROUP BY event_type ORDER BY events DESC"

DAILY = """
SELECT toDate(session_start) AS day, dictGetOrNull('dict_brands', 'brand_code', brand_id) AS brand, count() AS sessions
FROM customer_sessions GROUP BY day, brand ORDER BY day, brand
"""

# a date whose 30 days have not all passed has no rates yet: its users' outcomes are still open (they would read
# as all churned on the latest date)
TARGET_RATES = """
SELECT l.feature_date AS feature_date, count() AS users,
       if(min(l.label_window_complete) = 1, avg(l.churned_30d), NULL) AS churn_rate,
       if(min(l.label_window_complete) = 1, avg(l.converted_30d), NULL) AS conversion_rate,
       min(l.label_window_complete) AS window_complete
FROM customer_user_labels AS l GROUP BY feature_date ORDER BY feature_date
"""

RATES_BY = """
SELECT {dim} AS value, count() AS users, avg(l.churned_30d) AS churn_rate, avg(l.converted_30d) AS conversion_rate
FROM customer_user_labels AS l
INNER JOIN (SELECT * FROM customer_user_features WHERE feature_date = {{d:Date}}) AS uf ON uf.user_id = l.user_id
WHERE l.feature_date = {{d:Date}}
GROUP BY value ORDER BY users DESC
"""

DIMENSIONS = {
    "brand": "dictGetOrNull('dict_brands', 'brand_name', uf.brand_id)",
    "device": "dictGetOrNull('dict_device_types', 'device_type_name', uf.preferred_device_type_id)",
    "country": "dictGetOrNull('dict_countries', 'country_name', uf.primary_country_code)",
    "subscriber": "if(uf.is_subscriber = 1, 'subscriber', 'not subscribed')",
}

SAMPLE_ROWS = 50_000
PLOTTED = [
    "total_sessions", "avg_session_duration_sec", "days_since_last_session", "sessions_last_30d", "activity_trend",
    "total_article_views", "click_through_rate", "engagement_score", "category_diversity", "total_ad_revenue",
]


def _numeric_columns(client: Client) -> list[str]:
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'customer_user_features' ORDER BY position"
    ).result_rows
    return [n for n, t in rows if t.startswith(("UInt", "Int", "Float"))]


def numeric_statistics(client: Client, d: date) -> pd.DataFrame:
    """Mean, median, std, min and max of every numeric feature, computed in ClickHouse."""
    cols = _numeric_columns(client)
    exprs = [f"tuple(avg({c}), quantile(0.5)({c}), stddevPop({c}), min({c}), max({c}), countIf({c} = 0) / count())" for c in cols]
    row = client.query(
        f"SELECT {', '.join(exprs)} FROM customer_user_features WHERE feature_date = {{d:Date}}", parameters={"d": d}
    ).result_rows[0]
    return pd.DataFrame([list(map(float, r)) for r in row], index=cols,
                        columns=["mean", "median", "std", "min", "max", "share_zero"])


def correlations(client: Client, d: date, columns: list[str]) -> pd.DataFrame:
    """Pearson correlation matrix of ``columns`` over every user of the date (ClickHouse corrMatrix)."""
    args = ", ".join(f"toFloat64({c})" for c in columns)
    matrix = client.query(
        f"SELECT corrMatrix({args}) FROM customer_user_features WHERE feature_date = {{d:Date}}", parameters={"d": d}
    ).result_rows[0][0]
    return pd.DataFrame(np.array(matrix, dtype=float), index=columns, columns=columns)


REPORTS_EXTRA = "pip install 'ownlens[reports]'"


def pyplot():
    """matplotlib's pyplot (Agg backend), or None where the ``reports`` extra is not installed: training and drift
    reports are then written without their figures, and the exploration report asks for the extra."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def no_figures_note() -> tuple[str, str]:
    return ("Figures", f"<p>The figures of this report need matplotlib: {REPORTS_EXTRA}.</p>")


def _figure_html(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _table_html(frame: pd.DataFrame, floatfmt: str = "{:,.4g}") -> str:
    return frame.to_html(float_format=lambda x: floatfmt.format(x), border=0, classes="t", escape=True)


def explore(client: Client, out_dir: Path, feature_date: date | None = None) -> Path:
    """Write ``report.html`` (plus CSVs of its tables) to ``out_dir``; returns the report path."""
    plt = pyplot()
    if plt is None:
        raise InvalidInput(f"the exploration report is mostly figures, which need matplotlib: {REPORTS_EXTRA}")

    d = feature_date or latest_feature_date(client)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = query_frame(client, SUMMARY)
    events = query_frame(client, EVENTS_BY_TYPE)
    daily = query_frame(client, DAILY)
    stats = numeric_statistics(client, d)
    corr = correlations(client, d, PLOTTED)
    rates = query_frame(client, TARGET_RATES)
    complete = rates[rates["window_complete"] == 1]
    label_d = complete["feature_date"].max() if not complete.empty else None  # the latest date with known outcomes
    by = {} if label_d is None else {name: query_frame(client, RATES_BY.format(dim=expr), {"d": label_d})
                                     for name, expr in DIMENSIONS.items()}
    quality = check_user_features(client, d)
    sample = query_frame(
        client,
        f"SELECT {', '.join(PLOTTED)} FROM customer_user_features WHERE feature_date = {{d:Date}} "
        "ORDER BY cityHash64(user_id) LIMIT {n:UInt32}",
        {"d": d, "n": SAMPLE_ROWS},
    )
    truth = query_frame(
        client,
        "SELECT avg(churn_probability) AS true_churn, avg(conversion_probability) AS true_conversion, count() AS users "
        "FROM sim_user_truth WHERE feature_date = {d:Date}", {"d": label_d or d},
    ) if table_exists(client, "sim_user_truth") else pd.DataFrame({"users": [0]})

    sections = []
    sections.append(("Data summary", _table_html(summary.T.rename(columns={0: "value"})) + _table_html(events)))

    fig, ax = plt.subplots(figsize=(9, 3.2))
    for brand, part in daily.groupby("brand"):
        ax.plot(pd.to_datetime(part["day"]), part["sessions"], label=brand)
    ax.set_title("Sessions per day by brand"); ax.legend(); ax.grid(alpha=0.3)
    sections.append(("Activity over time", _figure_html(fig)))

    sections.append((f"Numeric statistics of customer_user_features on {d}", _table_html(stats)))

    fig, axes = plt.subplots(2, 5, figsize=(15, 5.5))
    for ax, col in zip(axes.ravel(), PLOTTED):
        values = sample[col].astype(float)
        ax.hist(values, bins=40, color="#3b6ea8")
        if values.max() > 20 * max(values.median(), 1e-9):
            ax.set_yscale("log")
        ax.set_title(col, fontsize=9)
    fig.tight_layout()
    sections.append((f"Feature distributions ({len(sample):,} users sampled)", _figure_html(fig)))

    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(corr.values, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(PLOTTED)), PLOTTED, rotation=70, fontsize=8)
    ax.set_yticks(range(len(PLOTTED)), PLOTTED, fontsize=8)
    for i in range(len(PLOTTED)):
        for j in range(len(PLOTTED)):
            ax.text(j, i, f"{corr.values[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im)
    sections.append(("Feature correlations (all users, computed in ClickHouse)", _figure_html(fig)))

    target_html = _table_html(rates)
    open_dates = rates.loc[rates["window_complete"] == 0, "feature_date"]
    if len(open_dates):
        target_html = (f"<p>{len(open_dates)} feature date(s) from {open_dates.min()} on have no rates: their 30 days "
                       "have not all passed, so their users' outcomes are not known yet.</p>") + target_html
    if not complete.empty:
        fig, ax = plt.subplots(figsize=(9, 3))
        x = pd.to_datetime(complete["feature_date"])
        ax.plot(x, complete["churn_rate"], marker="o", label="churn rate (no session in next 30 days)")
        ax.plot(x, complete["conversion_rate"], marker="o", label="conversion rate (subscribes in next 30 days)")
        ax.set_ylim(0, None); ax.legend(); ax.grid(alpha=0.3)
        target_html = _figure_html(fig) + target_html
    if int(truth["users"].iloc[0]) and label_d is not None:
        target_html += f"<p>Simulator's true mean probabilities on the users of {label_d}: " + html.escape(
            f"churn {truth['true_churn'].iloc[0]:.3f}, conversion {truth['true_conversion'].iloc[0]:.3f}") + "</p>"
    if by:
        fig, axes = plt.subplots(1, len(by), figsize=(15, 3.2))
        for ax, (name, frame) in zip(axes, by.items()):
            ax.barh(frame["value"].astype(str), frame["churn_rate"], color="#c0504d")
            ax.set_title(f"churn rate by {name} ({label_d})", fontsize=9)
        fig.tight_layout()
        target_html += _figure_html(fig) + "".join(f"<h3>by {n} ({label_d})</h3>" + _table_html(f) for n, f in by.items())
    sections.append(("Target variables", target_html))

    sections.append(("Data quality", f"<pre>{html.escape(quality.summary())}</pre>" + _table_html(quality.to_frame())))

    stats.to_csv(out_dir / "numeric_statistics.csv")
    corr.to_csv(out_dir / "correlations.csv")
    rates.to_csv(out_dir / "target_rates.csv", index=False)
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path = out_dir / "report.html"
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>OwnLens data exploration</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table.t{border-collapse:collapse;font-size:12px}"
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}</style></head>"
        f"<body><h1>OwnLens data exploration</h1><p>Features of {d}; generated {generated}.</p>{body}</body></html>"
    )
    return path
