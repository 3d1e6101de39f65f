"""Commands that serve models: ``serve`` (the REST API) and ``worker`` (real-time scoring of new activity)."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

import typer

from ownlens.ml.cli.common import Dsn, app, connect, console, dsn_option, log, model, out
from ownlens.ml.errors import InvalidInput


@app.command(epilog="Examples: ownlens-ml serve --port 8000\n\nOWNLENS_API_KEYS=secret1,secret2 ownlens-ml serve --host 0.0.0.0")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    realtime: Optional[list[str]] = typer.Option(None, "--realtime", help="Also run this model's real-time worker inside the server (repeatable)."),
    monitor_every: float = typer.Option(60.0, help="Minutes between scheduled monitoring passes inside the server (drift on new "
                                              "feature dates, performance once outcomes are in); 0 turns it off."),
    retrain_on_alert: bool = typer.Option(False, help="When scheduled monitoring raises drift alerts, train a challenger and "
                                                      "promote it if it scores at least as well as production on the same rows."),
    dsn: Dsn = dsn_option(),
):
    """Run the REST API (OpenAPI docs at /docs, the web console at /ui). With the embedded warehouse this process
    holds it, runs scheduled monitoring (and any --realtime workers) itself, and lets other commands and notebooks
    on this machine use the warehouse through it while it runs."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one request, one thread: no oversubscription on small machines
    import uvicorn

    from ownlens.ml import schema
    from ownlens.ml.serving.app import create_app
    from ownlens.ml.settings import get_settings

    for name in realtime or []:
        _realtime_model(name)
    if monitor_every < 0:
        raise InvalidInput("--monitor-every must be >= 0 minutes (0 turns scheduled monitoring off)")
    client = connect(dsn)  # fail here, with the usual one-line error, if the warehouse is unreachable or held
    schema.require(client)
    settings = get_settings()
    console.print(f"serving on http://{host}:{port} (the console at /ui, docs at /docs)" + (" with API keys" if settings.api_key_set else ""))
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    app_ = create_app(settings, client, realtime=list(realtime or []), monitor_interval_s=monitor_every * 60 or None,
                      retrain_on_alert=retrain_on_alert, share_warehouse_at=f"http://{local}:{port}")
    log.info("serving", extra={"fields": {"url": f"http://{host}:{port}", "api_keys": bool(settings.api_key_set)}})
    # log_config=None: uvicorn's own warnings go through the handler --log-json set up, one JSON object per line
    uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False, log_config=None)


def _realtime_model(name: str):
    """The model of a real-time worker: one whose predictions are about a user, with a value per prediction."""
    definition = model(name)
    if definition.entity != ("user_id",) or definition.prediction_fields is None:
        from ownlens.ml.models import every

        able = ", ".join(m.name for m in every() if m.entity == ("user_id",) and m.prediction_fields is not None)
        raise InvalidInput(f"{name} has no single value per user to score as events arrive; the real-time worker runs {able}")
    return definition


@app.command(epilog="Examples: ownlens-ml worker churn --once\n\nownlens-ml worker churn --interval 10 --since 2026-03-19T00:00:00")
def worker(
    name: str = typer.Argument(..., metavar="MODEL", help="Model to score with (a per-user model, e.g. churn, conversion, engagement)."),
    once: bool = typer.Option(False, help="Catch up with the events so far, then exit."),
    interval: float = typer.Option(10.0, help="Seconds to wait when there is nothing new."),
    since: Optional[str] = typer.Option(None, help="Restart from this time (ISO); default: where the worker stopped, or now for a new one."),
    window_hours: float = typer.Option(1.0, help="At most this much event time per pass."),
    worker_name: Optional[str] = typer.Option(None, "--name", help="Worker name (its watermark); default: worker-MODEL."),
    dsn: Dsn = dsn_option(),
):
    """Real-time inference: score users as new events arrive, resuming exactly where it stopped."""
    from datetime import datetime, timezone

    from ownlens.ml.serving import worker as realtime
    from ownlens.ml.serving.served import ServedModels

    definition = _realtime_model(name)
    client = connect(dsn)
    worker_name = worker_name or f"worker-{name}"
    if since:
        try:
            at = datetime.fromisoformat(since).replace(tzinfo=timezone.utc)
        except ValueError:
            raise InvalidInput(f"--since {since!r} is not a time: use ISO format, e.g. 2026-03-19T00:00:00") from None
        realtime.set_watermark(client, worker_name, name, at)
    served = ServedModels(client, feature_cache_ttl_s=0)  # production, promotions and A/B arms, as the API serves them
    passes = realtime.run(client, definition, lambda user: served.server(name, user), worker_name, interval_s=interval,
                          once=once, max_window=timedelta(hours=window_hours))
    out.print(f"{worker_name}: {len(passes)} windows, {sum(p.users for p in passes):,} users with new events, "
              f"{sum(p.scored for p in passes):,} scored; watermark {realtime.watermark(client, worker_name)}")
