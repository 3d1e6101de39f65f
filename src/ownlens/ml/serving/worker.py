"""Real-time inference: score users as their new events arrive, resuming exactly where a crash left off.

Each pass reads the worker's watermark, takes the users with events in (watermark, upper], scores
them with the production model on their latest features, writes ml_realtime_predictions tagged with
``window_end = upper``, then advances the watermark to ``upper``. A pass that dies after writing but
before advancing leaves rows past the watermark; the next pass deletes those first and redoes the
window, so every window is scored once: no gaps, no duplicates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from ownlens.ml.data.loaders import as_uuid

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

MAX_EVENT_TIME = "SELECT max(event_timestamp) FROM customer_events"
UNCOMMITTED = "DELETE FROM ml_realtime_predictions WHERE worker = {w:String} AND window_end > {lo:DateTime64(3, 'UTC')}"
WATERMARK = "SELECT watermark FROM ml_inference_watermarks FINAL WHERE worker = {w:String}"
NEW_ACTIVITY = """
SELECT toString(user_id) AS user_id, max(event_timestamp) AS last_event_at, count() AS events
FROM customer_events
WHERE event_timestamp > {lo:DateTime64(3, 'UTC')} AND event_timestamp <= {hi:DateTime64(3, 'UTC')}
GROUP BY user_id
"""


@dataclass(frozen=True)
class Pass:
    window_start: datetime
    window_end: datetime
    users: int
    scored: int


def set_watermark(client: Client, worker: str, model: str, at: datetime) -> None:
    """Start (or restart) ``worker`` from ``at``: events after it will be scored."""
    client.insert("ml_inference_watermarks", [[worker, model, at, datetime.now(timezone.utc)]],
                  column_names=["worker", "model_name", "watermark", "updated_at"])


def watermark(client: Client, worker: str) -> datetime:
    rows = client.query(WATERMARK, parameters={"w": worker}).result_rows
    return rows[0][0].replace(tzinfo=timezone.utc) if rows else EPOCH


def _upper(client: Client, lo: datetime, max_window: timedelta, lag: timedelta) -> datetime | None:
    latest = client.command(MAX_EVENT_TIME)
    if not latest or str(latest).startswith("1970"):
        return None
    latest = datetime.fromisoformat(str(latest)).replace(tzinfo=timezone.utc) - lag
    if lo == EPOCH:  # a new worker starts at the newest events, not at the beginning of history
        return latest
    upper = min(latest, lo + max_window)
    return upper if upper > lo else None


def _score(server, users: list[str]) -> pd.DataFrame:
    """Score ``users`` with ``server`` (a model's Server), or, when it is a function of the user id (an A/B test's
    routing), with the server it picks for each user."""
    if not callable(server):
        return server.frame(users)
    groups: dict = {}
    for user in users:
        groups.setdefault(server(as_uuid(user)), []).append(user)
    return pd.concat([s.frame(group) for s, group in groups.items()], ignore_index=True)


def run_pass(client: Client, model, server, worker: str, *, max_window: timedelta = timedelta(hours=1),
             lag: timedelta = timedelta(0), fail_before_commit: bool = False) -> Pass | None:
    """Score one window of new activity with ``model`` (a per-user model; ``server`` answers for it, or picks the
    server of each user); None when there is nothing new."""
    lo = watermark(client, worker)
    # an earlier pass that wrote but did not commit: drop its rows, then redo its window
    if lo != EPOCH:  # (a new worker has written nothing)
        client.command(UNCOMMITTED, parameters={"w": worker, "lo": lo})
    hi = _upper(client, lo, max_window, lag)
    if hi is None:
        return None
    if lo == EPOCH:
        lo = hi  # first start: nothing to score yet, just remember where we are
    activity = client.query(NEW_ACTIVITY, parameters={"lo": lo, "hi": hi}).result_rows
    scored = 0
    if activity:
        frame = _score(server, [u for u, _, _ in activity])
        by_user = {u: (last, n) for u, last, n in activity}
        value, label_field = model.prediction_fields
        if len(frame):
            label = frame[label_field].astype(str) if label_field else [""] * len(frame)
            now = datetime.now(timezone.utc)
            client.insert_arrow("ml_realtime_predictions", pa.table({
                "worker": [worker] * len(frame), "model_name": [model.name] * len(frame), "model_version": frame["model_version"].astype(str).tolist(),
                "user_id": frame["user_id"].tolist(), "window_end": pa.array([hi] * len(frame), pa.timestamp("ms", "UTC")),
                "last_event_at": pa.array([by_user[u][0] for u in frame["user_id"]], pa.timestamp("ms", "UTC")),
                "events": pa.array([by_user[u][1] for u in frame["user_id"]], pa.uint32()),
                "feature_date": pa.array(list(frame["feature_date"]), pa.date32()),
                "prediction_value": pa.array(frame[value].to_numpy(dtype=float), pa.float64()),
                "prediction_label": list(label), "predicted_at": pa.array([now] * len(frame), pa.timestamp("ms", "UTC")),
            }))
            scored = len(frame)
    if fail_before_commit:
        raise RuntimeError("simulated crash between writing predictions and advancing the watermark")
    set_watermark(client, worker, model.name, hi)
    return Pass(lo, hi, len(activity), scored)


def run(client: Client, model, server, worker: str, interval_s: float = 10.0, once: bool = False, stop=None,
        **kw) -> list[Pass]:
    """Run passes until caught up (``once``) or until ``stop()`` is true, sleeping ``interval_s`` when idle."""
    done = []
    while not (stop and stop()):
        result = run_pass(client, model, server, worker, **kw)
        if result:
            done.append(result)
            log.info("realtime %s: %s users with new events in (%s, %s], %s scored", model.name, result.users,
                     result.window_start, result.window_end, result.scored)
            continue
        if once:
            break
        time.sleep(interval_s)
    return done
