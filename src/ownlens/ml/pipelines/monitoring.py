"""Scheduled monitoring of every registered model, and retraining when drift alerts fire.

One pass (``serve`` runs one every ``--monitor-every`` minutes) monitors drift on the newest feature date for every
model with monitored inputs, and the realised performance of every date with stored outputs once their outcomes
are known and not yet recorded. ``retrain`` trains a challenger on alerts and promotes it only if it does at least
as well as production on the same test rows.
"""

from __future__ import annotations

import logging

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.models import get, names
from ownlens.ml.monitoring.monitor import MonitoringReport, monitor

log = logging.getLogger(__name__)

REGISTERED = "SELECT DISTINCT model_name FROM ml_model_registry"
PERFORMANCE_DATES = ("SELECT DISTINCT monitoring_date FROM ml_model_monitoring WHERE model_name = {m:String} "
                     "AND monitor_type = 'performance'")


def retrain_on_alert(client: Client, model, report: MonitoringReport) -> dict | None:
    """When ``report`` has alerts, train a challenger and promote it if it scores at least as well as production
    on the same (latest labelled) test rows; returns that comparison, or None without alerts."""
    if not report.alerts:
        return None
    from ownlens.ml.pipelines.promotion import retrain

    _, duel = retrain(model, client, description=f"retrained after drift alerts on {report.current}")
    production = "n/a" if duel["production"] is None else f"{duel['production']:.4f}"
    log.warning("retrained %s after %d drift alert(s) on %s: %s %s %.4f vs production %s %s -> %s", model.name,
                len(report.alerts), report.current, duel["version"], duel["metric"], duel["new"] or float("nan"),
                duel["production_version"], production, "promoted" if duel["promoted"] else "kept")
    return duel


def scheduled_pass(client: Client, done: set, retrain: bool = False) -> list[MonitoringReport]:
    """One pass over every registered model: drift on the latest feature date, and realised performance on each
    date whose stored outputs can now be judged and have no performance rows yet; then the running A/B tests'
    readouts, where their data changed.

    ``done`` holds the (model, date) pairs this process has already monitored, so a pass with nothing new costs
    a few small queries; it is updated in place. ``retrain``: see :func:`retrain_on_alert`.
    """
    from ownlens.ml.data.loaders import latest_feature_date

    registered = {name for (name,) in client.query(REGISTERED).result_rows}
    latest = latest_feature_date(client)
    reports = []
    for name in [n for n in names() if n in registered]:
        model = get(name)
        judged = {d for (d,) in client.query(PERFORMANCE_DATES, parameters={"m": name}).result_rows}
        if model.inputs is not None and (name, latest) not in done:
            done.add((name, latest))
            try:
                reports.append(monitor(client, model, latest))
            except (InvalidInput, NotFound) as exc:  # e.g. no reference date before the first features
                log.info("monitoring %s on %s skipped: %s", name, latest, exc)
            else:
                if retrain:
                    retrain_on_alert(client, model, reports[-1])
        stored = model.stored_dates(client) if model.stored_dates is not None else []
        for d in [d for d in stored if d not in judged and (name, d) not in done]:
            try:
                if model.realised is None or model.realised(client, d) is None:
                    continue  # not judgeable yet: tried again next pass
                reports.append(monitor(client, model, d))
            except (InvalidInput, NotFound) as exc:
                log.info("monitoring %s on %s skipped: %s", name, d, exc)
            done.add((name, d))
    try:  # the running A/B tests' readouts, recomputed only when what they read changed
        from ownlens.ml.monitoring.abtest import refresh_running

        for test in refresh_running(client):
            log.info("A/B readout of %s recomputed", test)
    except Exception:  # noqa: BLE001 - a readout's trouble must not stop monitoring
        log.exception("refreshing the A/B readouts failed; tried again next pass")
    return reports
