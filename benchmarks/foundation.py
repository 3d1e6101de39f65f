"""Foundation benchmarks: simulation, features in SQL vs a bare GROUP BY vs pandas, loader latency.

Each measurement runs in its own subprocess so its peak memory (max RSS, chDB included) is its
own; ratios are taken between measurements of the same run.

    python benchmarks/foundation.py --users 1000000 --days 90 --out benchmarks/results/foundation.json
    python benchmarks/foundation.py --users 50000 --days 60          # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _client(path: str):
    from ownlens.ml.warehouse import connect

    return connect(f"chdb://{path}")


def bench_simulate(path: str, users: int, days: int) -> dict:
    from ownlens.ml import schema
    from ownlens.ml.simulation import SimulationConfig, simulate

    client = _client(path)
    schema.apply(client)
    t = time.perf_counter()
    counts = simulate(client, SimulationConfig(users=users, days=days))
    return {"seconds": time.perf_counter() - t, "sessions": counts["sessions"], "events": counts["events"]}


def bench_features_sql(path: str, d: date, repeats: int) -> dict:
    """customer_user_features for one date vs a bare GROUP BY user_id count over the same sessions.

    Two builds: "daily", the usual case, from the state of the day before plus one day of sessions; and
    "cold", from all history (the first build of a warehouse, or after late data made the states stale).
    """
    from ownlens.ml.features.customer import build_user_features

    client = _client(path)
    bare_sql = (
        "SELECT count(), sum(c) FROM (SELECT user_id, count() AS c FROM customer_sessions "
        "WHERE session_start < {d:Date} GROUP BY user_id)"
    )

    def bare() -> float:
        t = time.perf_counter()
        client.query(bare_sql, parameters={"d": d})
        return time.perf_counter() - t

    def build() -> float:
        t = time.perf_counter()
        nonlocal rows
        rows = build_user_features(client, d)
        return time.perf_counter() - t

    rows, bares, cold, daily = 0, [], [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        bares.append(bare())
        client.command("TRUNCATE TABLE customer_user_state")
        cold.append(build())
    build_user_features(client, d - timedelta(days=1))  # the day before: its state is where a daily build starts
    for _ in range(repeats):
        bares.append(bare())
        client.command("ALTER TABLE customer_user_state DROP PARTITION {p:Date}", parameters={"p": d})
        daily.append(build())
    # the floor of any build that writes the table: copying the finished rows into an empty copy of it
    copies = []
    client.command("CREATE TABLE _bench_copy AS customer_user_features")
    try:
        for _ in range(repeats):
            client.command("TRUNCATE TABLE _bench_copy")
            t = time.perf_counter()
            client.command("INSERT INTO _bench_copy SELECT * FROM customer_user_features WHERE feature_date = {d:Date}", parameters={"d": d})
            copies.append(time.perf_counter() - t)
    finally:
        client.command("DROP TABLE IF EXISTS _bench_copy")
    sessions = client.command("SELECT count() FROM customer_sessions WHERE session_start < {d:Date}", parameters={"d": d})
    return {
        "bare_group_by_s": min(bares), "features_build_s": min(daily), "ratio": min(daily) / min(bares),
        "copy_of_the_rows_s": min(copies), "copy_ratio": min(copies) / min(bares),
        "features_build_cold_s": min(cold), "ratio_cold": min(cold) / min(bares), "users": rows, "sessions": int(sessions),
    }


def _mode(frame: pd.DataFrame, key: str) -> pd.Series:
    counts = frame.groupby(["user_id", key], observed=True).size().reset_index(name="n")
    return counts.sort_values("n", ascending=False).drop_duplicates("user_id").set_index("user_id")[key]


def bench_features_pandas(path: str, d: date) -> dict:
    """The same features the old way: load the sessions into pandas and aggregate there."""
    client = _client(path)
    t = time.perf_counter()
    parts = []
    with client.query_arrow_stream(
        "SELECT toString(user_id) AS user_id, toString(brand_id) AS brand_id, session_start, session_duration_sec, "
        "total_events, page_views, article_views, article_clicks, video_plays, newsletter_signups, subscriptions, "
        "ad_impressions, ad_clicks, ad_revenue, total_engagement_seconds, avg_scroll_depth, "
        "toString(device_type_id) AS device_type_id, toString(os_id) AS os_id, toString(browser_id) AS browser_id, "
        "country_code, toString(city_id) AS city_id "
        "FROM customer_sessions WHERE session_start < {d:Date}",
        parameters={"d": d},
    ) as stream:
        for batch in stream:
            parts.append(batch.to_pandas())
    s = pd.concat(parts, ignore_index=True)
    del parts
    load_s = time.perf_counter() - t
    for col in ("user_id", "brand_id", "device_type_id", "os_id", "browser_id", "country_code", "city_id"):
        s[col] = s[col].astype("category")
    ts = pd.to_datetime(s["session_start"], utc=True).dt.tz_localize(None)
    day = ts.dt.floor("D")
    cut = pd.Timestamp(d)
    s["day"] = day
    s["last7"] = ts >= cut - pd.Timedelta(days=7)
    s["last30"] = ts >= cut - pd.Timedelta(days=30)
    s["prev30"] = (ts >= cut - pd.Timedelta(days=60)) & ~s["last30"]
    s["day30"] = day.where(s["last30"])
    s["weekend"] = ts.dt.dayofweek >= 5
    s["evening"] = ts.dt.hour >= 18
    s["scroll_x_views"] = s["avg_scroll_depth"].fillna(0) * s["article_views"]
    g = s.groupby("user_id", observed=True)
    f = g.agg(
        total_sessions=("session_start", "size"), total_events=("total_events", "sum"),
        avg_session_duration_sec=("session_duration_sec", "mean"), active_days=("day", "nunique"),
        first=("day", "min"), last=("day", "max"), sessions_last_7d=("last7", "sum"),
        sessions_last_30d=("last30", "sum"), sessions_prev_30d=("prev30", "sum"),
        active_days_last_30d=("day30", "nunique"), total_page_views=("page_views", "sum"),
        total_article_views=("article_views", "sum"), total_article_clicks=("article_clicks", "sum"),
        total_video_plays=("video_plays", "sum"), total_newsletter_signups=("newsletter_signups", "sum"),
        subscriptions=("subscriptions", "sum"), total_ad_impressions=("ad_impressions", "sum"),
        total_ad_clicks=("ad_clicks", "sum"), total_ad_revenue=("ad_revenue", "sum"),
        total_engagement_seconds=("total_engagement_seconds", "sum"), scroll=("scroll_x_views", "sum"),
        brand_count=("brand_id", "nunique"), device_count=("device_type_id", "nunique"),
        weekend=("weekend", "mean"), evening=("evening", "mean"), duration=("session_duration_sec", "sum"),
    )
    f = f[f["last"] >= cut - pd.Timedelta(days=30)]
    f["days_since_first_session"] = (cut - f["first"]).dt.days
    f["days_since_last_session"] = (cut - f["last"]).dt.days
    f["activity_trend"] = (f.sessions_last_7d / 7 + 0.01) / (f.sessions_last_30d / 30 + 0.01)
    f["avg_scroll_depth"] = (f.scroll / f.total_article_views.where(f.total_article_views > 0)).fillna(0)
    f["click_through_rate"] = f.total_article_clicks / f.total_article_views.clip(lower=1)
    f["recency_score"] = np.exp(-f.days_since_last_session / 7)
    f["engagement_per_minute"] = f.total_events / (f.duration / 60).clip(lower=1)
    for key, name in [("brand_id", "preferred_brand_id"), ("device_type_id", "preferred_device_type_id"),
                      ("os_id", "preferred_os_id"), ("browser_id", "preferred_browser_id"),
                      ("country_code", "primary_country_code"), ("city_id", "primary_city_id")]:
        f[name] = _mode(s, key).reindex(f.index)
    return {"load_s": load_s, "total_s": time.perf_counter() - t, "users": len(f), "sessions": len(s)}


def bench_load(path: str, d: date, repeats: int) -> dict:
    from ownlens.ml.data.loaders import UserFeaturesLoader

    loader = UserFeaturesLoader(_client(path))
    loader.load(feature_date=d, include_references=True, limit=10_000)  # warm caches and dictionaries
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        frame = loader.load(feature_date=d, include_references=True, limit=10_000)
        times.append(time.perf_counter() - t)
    return {"median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * float(np.percentile(times, 90)),
            "rows": len(frame), "columns": frame.shape[1]}


def _child(argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if out.returncode:
        raise SystemExit(f"benchmark step {argv[0]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--path", help="warehouse directory (default: a temp dir, removed afterwards)")
    p.add_argument("--skip-simulate", action="store_true", help="reuse the warehouse at --path")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.child:
        step, path, *rest = args.child
        if step == "simulate":
            result = bench_simulate(path, int(rest[0]), int(rest[1]))
        elif step == "features_sql":
            result = bench_features_sql(path, date.fromisoformat(rest[0]), int(rest[1]))
        elif step == "features_pandas":
            result = bench_features_pandas(path, date.fromisoformat(rest[0]))
        elif step == "load":
            result = bench_load(path, date.fromisoformat(rest[0]), int(rest[1]))
        result["peak_rss_gib"] = _peak_rss_gib()
        print(json.dumps(result))
        return

    from ownlens.ml.simulation import SimulationConfig

    path = args.path or tempfile.mkdtemp(prefix="ownlens-bench-")
    d = SimulationConfig().start + timedelta(days=args.days - 30)  # a date with 60 days of history at 90 days
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                   f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, Python {platform.python_version()}",
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "users": args.users, "days": args.days, "feature_date": d.isoformat(),
    }
    try:
        if not args.skip_simulate:
            results["simulate"] = _child(["simulate", path, str(args.users), str(args.days)])
            print("simulate", results["simulate"], flush=True)
        results["features_sql"] = _child(["features_sql", path, d.isoformat(), str(args.repeats)])
        print("features_sql", results["features_sql"], flush=True)
        results["features_pandas"] = _child(["features_pandas", path, d.isoformat()])
        results["features_pandas"]["ratio_vs_sql"] = results["features_pandas"]["total_s"] / results["features_sql"]["features_build_s"]
        results["features_pandas"]["ratio_vs_sql_cold"] = results["features_pandas"]["total_s"] / results["features_sql"]["features_build_cold_s"]
        print("features_pandas", results["features_pandas"], flush=True)
        results["load"] = _child(["load", path, d.isoformat(), "50"])
        print("load", results["load"], flush=True)
    finally:
        if not args.path:
            shutil.rmtree(path, ignore_errors=True)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
