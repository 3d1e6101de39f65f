"""Days from injected drift to alert, false alerts on an unshifted twin, and agreement with Evidently.

Simulates one publisher twice, with `--drift-at` and without (same seed), trains churn on pre-drift dates,
promotes it, then walks day by day from just before the drift: build that day's features, score them,
monitor against a pre-drift reference (`ownlens-ml monitor` does the same), and note the first day an alert
fires (and the first warning). The twin without drift runs through the same days: anything flagged there is
a false alarm. When `evidently` is importable, our PSI / Jensen-Shannon / Kolmogorov-Smirnov on the last day
watched are set next to Evidently's stat tests on exactly the same two samples.

    python benchmarks/drift.py --users 20000 --out benchmarks/results/drift.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date, timedelta

import numpy as np

START = date(2026, 1, 5)
COMPARED = [("sessions_last_7d", "numeric"), ("active_days_last_30d", "numeric"), ("avg_session_duration_sec", "numeric"),
            ("total_sessions", "numeric"), ("preferred_device_type_id", "categorical"), ("preferred_category_id", "categorical")]


def _publisher(path: str, name: str, users: int, seed: int, drift_at: date | None):
    from ownlens.ml import schema
    from ownlens.ml.data.loaders import reload_reference_dictionaries
    from ownlens.ml.features.build import build_features
    from ownlens.ml.models.customer.churn import CHURN
    from ownlens.ml.models.runs import train
    from ownlens.ml.models.scoring import predict_batch
    from ownlens.ml.registry import store
    from ownlens.ml.simulation import SimulationConfig, simulate
    from ownlens.ml.warehouse import connect, embedded_dsn

    client = connect(embedded_dsn(path, name))
    schema.apply(client)
    simulate(client, SimulationConfig(users=users, days=90, start=START, seed=seed, drift_at=drift_at))
    reload_reference_dictionaries(client)
    train_dates = [START + timedelta(days=28), START + timedelta(days=35)]
    reference = START + timedelta(days=49)
    for d in (*train_dates, reference):
        build_features(client, d)
    result = train(CHURN, client, feature_date=train_dates[1])  # a random split of one date: a time split needs 30 days more
    store.promote(client, "churn", result.model.version)
    predict_batch(CHURN, client, result.model, reference)
    return client, result.model, reference


def _walk(client, model, reference: date, days: list[date]) -> list[dict]:
    from ownlens.ml.features.build import build_features
    from ownlens.ml.models.customer.churn import CHURN
    from ownlens.ml.models.scoring import predict_batch
    from ownlens.ml.monitoring.monitor import monitor

    out = []
    for d in days:
        t = time.perf_counter()
        build_features(client, d)
        predict_batch(CHURN, client, model, d)
        t_monitor = time.perf_counter()
        report = monitor(client, CHURN, d, reference)
        out.append({"date": str(d), "alerts": report.alerts, "seconds": round(time.perf_counter() - t, 2),
                    "monitor_seconds": round(time.perf_counter() - t_monitor, 2),
                    "prediction": _brief(report.prediction_drift) if report.prediction_drift else None,
                    "most_shifted": [_brief(x) for x in sorted((x for x in report.drift if not x.skipped and not x.trending),
                                                                     key=lambda x: -x.size)[:4]]})
        print(d, len(report.alerts), "alerts", report.alerts[:3], "| predictions", out[-1]["prediction"],
              "| most shifted", out[-1]["most_shifted"][:2], flush=True)
    return out


def _brief(d) -> dict:
    return {"name": d.name, "wasserstein_sd": round(d.wasserstein, 4) if d.wasserstein is not None else None, "psi": round(d.psi, 4),
            "ks": round(d.ks_statistic, 4) if d.ks_statistic is not None else None, "status": d.status}


def _evidently(client, reference: date, current: date) -> list[dict] | None:
    try:
        from evidently.legacy.calculations.stattests import jensenshannon_stat_test, ks_stat_test, psi_stat_test
        from evidently.legacy.core import ColumnType
    except ImportError:
        return None
    import pandas as pd
    from scipy import stats

    from ownlens.ml.monitoring.drift import feature_drift

    ours = {d.name: d for d in feature_drift(client, "customer_user_features", [(c, c, k) for c, k in COMPARED], reference, current)}
    rows = []
    for column, kind in COMPARED:
        sql = f"SELECT {column} FROM customer_user_features WHERE feature_date = {{d:Date}}"
        ref, cur = (pd.Series([r[0] for r in client.query(sql, parameters={"d": d}).result_rows]) for d in (reference, current))
        if kind == "categorical":
            ref, cur = ref.astype(str), cur.astype(str)
        ctype = ColumnType.Numerical if kind == "numeric" else ColumnType.Categorical
        psi = psi_stat_test(ref, cur, ctype, None)
        js = jensenshannon_stat_test(ref, cur, ctype, None)
        row = {"column": column, "kind": kind, "ours_psi": ours[column].psi, "evidently_psi": float(psi.drift_score),
               "ours_js_distance": float(np.sqrt(ours[column].js)), "evidently_js_distance": float(js.drift_score),
               "ours_status": ours[column].status, "evidently_psi_drifted": bool(psi.drifted), "evidently_js_drifted": bool(js.drifted)}
        if kind == "numeric":
            ks = ks_stat_test(ref, cur, ctype, None)
            row |= {"ours_ks_statistic": ours[column].ks_statistic, "scipy_ks_statistic": float(stats.ks_2samp(ref, cur).statistic),
                    "ours_ks_p": ours[column].ks_p_value, "evidently_ks_p": float(ks.drift_score)}
        rows.append(row)
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--drift-day", type=int, default=60, help="days after the simulation start")
    p.add_argument("--watch-days", type=int, default=14)
    p.add_argument("--out")
    args = p.parse_args()
    drift_at = START + timedelta(days=args.drift_day)
    days = [drift_at - timedelta(days=1) + timedelta(days=i) for i in range(args.watch_days + 1)]
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(["python", *sys.argv]),
               "machine": f"{platform.machine()}, {platform.python_version()}", "users": args.users, "drift_at": str(drift_at)}
    with tempfile.TemporaryDirectory() as path:
        for name, at in (("drifted", drift_at), ("steady", None)):
            client, model, reference = _publisher(path, name, args.users, args.seed, at)
            walk = _walk(client, model, reference, days)
            first = next((w for w in walk if w["alerts"]), None)
            warned = next((w for w in walk if w["alerts"] or w["prediction"]["status"] != "ok"
                           or any(x["status"] in ("warning", "alert") for x in w["most_shifted"])), None)
            results[name] = {"reference": str(reference), "days": walk,
                             "first_alert": first and first["date"],
                             "days_to_alert": (date.fromisoformat(first["date"]) - drift_at).days if first else None,
                             "days_with_alerts": sum(bool(w["alerts"]) for w in walk),
                             "first_warning": warned and warned["date"],
                             "days_to_warning": (date.fromisoformat(warned["date"]) - drift_at).days if warned else None}
            if name == "drifted":  # the last day watched: the shift at its largest
                results["evidently"] = _evidently(client, reference, days[-1])
    summary = {k: results[k] for k in ("drift_at",)} | {f"{n}_{k}": results[n][k] for n in ("drifted", "steady")
                                                         for k in ("first_alert", "days_to_alert", "days_with_alerts", "first_warning", "days_to_warning")}
    print(json.dumps(summary, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
