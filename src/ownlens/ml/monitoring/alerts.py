"""Where drift alerts go: the log always, and ``OWNLENS_ALERT_WEBHOOK`` when set, in the shape its receiver accepts
(``OWNLENS_ALERT_WEBHOOK_FORMAT``): ``json`` (ours: model, date, alerts), ``slack`` (an incoming webhook's
``text``), or ``alertmanager`` (a list of alerts for Alertmanager's ``POST /api/v2/alerts``, one per column,
labelled so its routing and grouping work on model and column)."""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from datetime import datetime, timedelta, timezone

from ownlens.ml.errors import InvalidInput

log = logging.getLogger("ownlens.ml.monitoring.monitor")

FORMATS = ("json", "slack", "alertmanager")
RESOLVE_AFTER = timedelta(days=1)  # Alertmanager resolves an alert not re-sent by then: the next day's run re-sends it


def webhook_format() -> str:
    chosen = os.environ.get("OWNLENS_ALERT_WEBHOOK_FORMAT", "json").strip().lower() or "json"
    if chosen not in FORMATS:
        raise InvalidInput(f"OWNLENS_ALERT_WEBHOOK_FORMAT={chosen!r} is not a format: use one of {', '.join(FORMATS)}")
    return chosen


def payload(report, fmt: str, now: datetime | None = None):
    """The body posted for ``report`` (a MonitoringReport with alerts) in format ``fmt``."""
    alerts = report.alerts
    if fmt == "slack":
        lines = "\n".join(f"• {a}" for a in alerts[:20]) + (f"\n… and {len(alerts) - 20} more" if len(alerts) > 20 else "")
        return {"text": f":warning: OwnLens drift alert: *{report.model}* {report.version} on {report.current}, "
                        f"{len(alerts)} past the alert threshold\n{lines}"}
    if fmt == "alertmanager":
        now = now or datetime.now(timezone.utc)
        drifted = [d for d in report.drift if d.status == "alert"]
        if report.prediction_drift is not None and report.prediction_drift.status == "alert":
            drifted.append(report.prediction_drift)
        return [{"labels": {"alertname": "OwnLensDrift", "severity": "warning", "model": report.model, "column": d.name,
                            "statistic": d.metric},
                 "annotations": {"summary": f"{report.model}: {d.name} drifted ({d.metric} {d.size:.3f}, alert at {d.limits[1]})",
                                 "description": f"{report.model} {report.version} on {report.current} against "
                                                f"{', '.join(str(r) for r in report.references)}"},
                 "startsAt": now.isoformat(), "endsAt": (now + RESOLVE_AFTER).isoformat()} for d in drifted]
    return {"model": report.model, "date": str(report.current), "alerts": alerts}


def send(report) -> None:
    """Log the alerts of ``report`` and post them to the webhook, if one is set (a failing webhook is logged, never
    raised: it must not fail the monitoring run)."""
    alerts = report.alerts
    if not alerts:
        return
    names = [a.split(":")[0] for a in alerts]
    log.warning("drift alert for %s on %s against %s: %d past the threshold (%s%s)", report.model, report.current,
                ", ".join(str(d) for d in report.references), len(alerts), ", ".join(names[:5]), ", ..." if len(names) > 5 else "")
    url = os.environ.get("OWNLENS_ALERT_WEBHOOK")
    if not url:
        return
    body = json.dumps(payload(report, webhook_format())).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except OSError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)
