"""The model registry in the warehouse: versions, stages, metrics, features and training runs.

Stages: a new version is a ``candidate``; ``promote`` makes one ``production`` (the previous
production version becomes ``archived``); ``rollback`` returns production to the version that
held it before. Rows are versioned by ``updated_at`` (ReplacingMergeTree) and read with FINAL.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timezone

import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, NotFound
from ownlens.ml.registry import mlflow_mirror
from ownlens.ml.registry.artifacts import read_artifact, write_artifact
from ownlens.ml.settings import get_settings

STAGES = ("candidate", "staging", "production", "archived")

REGISTRY_COLUMNS = (
    "model_id, model_name, model_version, model_type, algorithm, stage, metrics, feature_names, input_schema, "
    "training_data_start, training_data_end, artifact_uri, artifact_sha256, description, created_at, updated_at"
)
VERSIONS = f"""
SELECT {REGISTRY_COLUMNS} FROM ml_model_registry FINAL WHERE {{name:String}} = '' OR model_name = {{name:String}}
ORDER BY model_name, created_at DESC
"""
PRODUCTION_HISTORY = """
SELECT model_version, max(changed_at) FROM ml_model_stage_events WHERE model_name = {name:String} AND stage = 'production'
GROUP BY model_version ORDER BY max(changed_at) DESC
"""
RUNS = """
SELECT run_id, model_name, model_version, status, duration_sec, error_message, started_at FROM ml_model_training_runs FINAL
WHERE {name:String} = '' OR model_name = {name:String} ORDER BY started_at DESC LIMIT {limit:UInt32}
"""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clean(obj):
    """JSON-safe metrics: NaN becomes null."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def versions(client: Client, name: str | None = None) -> pd.DataFrame:
    """Every registered version (of ``name``), newest first."""
    rows = client.query_df(VERSIONS, parameters={"name": name or ""})
    if not rows.empty:
        rows["model_id"] = rows["model_id"].astype(str)
    return rows


def registered_names(client: Client) -> list[str]:
    """The names of the models with at least one registered version."""
    return [name for (name,) in client.query("SELECT DISTINCT model_name FROM ml_model_registry ORDER BY model_name").result_rows]


def next_version(client: Client, name: str, features: list[str]) -> str:
    """The version a new model of ``name`` gets: a feature list unlike the latest version's bumps the major
    number (a breaking change of the input schema), a retrain the minor."""
    existing = versions(client, name)
    if existing.empty:
        return "1.0.0"
    parsed = sorted(tuple(int(x) for x in v.split(".")) for v in existing["model_version"])
    major, minor, _ = parsed[-1]
    latest = existing.iloc[0]
    if list(latest["feature_names"]) != list(features):
        return f"{major + 1}.0.0"  # a different input schema is a breaking change
    return f"{major}.{minor + 1}.0"


def _write(client: Client, row: dict) -> None:
    client.insert("ml_model_registry", [list(row.values())], column_names=list(row.keys()))


def register(client: Client, *, model_id: str, name: str, version: str, task: str, algorithm: str, features: list[str],
             input_schema: dict, importances: dict[str, float], files: dict[str, bytes], metrics: dict, window: tuple,
             description: str, artifacts_uri: str | None = None) -> dict:
    """Write the artifact ``files`` and add ``version`` (see :func:`next_version`) of ``name`` as a ``candidate``;
    returns where the artifact went and its sha256. The path names the model id too, so warehouses that share an
    artifact store (two databases, one OWNLENS_HOME) never overwrite each other's versions."""
    base = (artifacts_uri or get_settings().artifacts_uri).rstrip("/")
    uri = f"{base}/{name}/{version}/{model_id}.zip"
    digest = write_artifact(uri, files)
    now = _now()
    _write(client, {
        "model_id": uuid.UUID(model_id), "model_name": name, "model_version": version, "model_type": task,
        "algorithm": algorithm, "stage": "candidate", "metrics": json.dumps(_clean(metrics), default=str),
        "feature_names": list(features), "input_schema": json.dumps(input_schema),
        "training_data_start": window[0], "training_data_end": window[1], "artifact_uri": uri,
        "artifact_sha256": digest, "description": description, "created_at": now, "updated_at": now,
    })
    categorical = input_schema.get("categorical", {})
    client.insert("ml_model_features", [
        [uuid.UUID(model_id), name, version, feature, "categorical" if feature in categorical else "numeric",
         float(importances.get(feature, 0.0)), ""]
        for feature in features
    ], column_names=["model_id", "model_name", "model_version", "feature_name", "feature_type", "importance", "description"])
    return {"artifact_uri": uri, "artifact_sha256": digest, "stage": "candidate"}


def get(client: Client, name: str, version: str | None = None) -> dict:
    """One version's registry row. ``version`` is a version, a stage (``production``...), or None/"latest"."""
    rows = versions(client, name)
    if rows.empty:
        raise NotFound(f"no model named {name!r} is registered: train it first (`ownlens-ml train {name}`)")
    if version in (None, "latest"):
        return rows.iloc[0].to_dict()
    if version in STAGES:
        staged = rows[rows["stage"] == version]
        if staged.empty:
            raise NotFound(f"{name} has no {version} version: promote one (`ownlens-ml models promote {name} VERSION`)")
        return staged.sort_values("updated_at").iloc[-1].to_dict()
    match = rows[rows["model_version"] == version]
    if match.empty:
        known = ", ".join(rows["model_version"].head(5))
        raise NotFound(f"{name} has no version {version!r} (registered: {known})")
    return match.iloc[0].to_dict()


def resolve(client: Client, name: str, version: str | None = "production") -> dict:
    """The registry row to serve for ``version``: as :func:`get`, but ``production`` falls back to the latest version."""
    try:
        return get(client, name, version)
    except NotFound:
        if version != "production":
            raise
        return get(client, name, None)


def read_files(row: dict) -> dict[str, bytes]:
    """The artifact files of a registry row, after checking them against the registered sha256."""
    return read_artifact(row["artifact_uri"], row["artifact_sha256"])


def _set_stage(client: Client, row: dict, stage: str) -> None:
    row = {k: row[k] for k in REGISTRY_COLUMNS.split(", ")}
    row.update({"stage": stage, "updated_at": _now(), "model_id": uuid.UUID(str(row["model_id"])),
                "feature_names": list(row["feature_names"])})
    for key in ("training_data_start", "training_data_end"):
        if pd.isna(row[key]):
            row[key] = None
        elif hasattr(row[key], "date"):
            row[key] = row[key].date()
    _write(client, row)
    client.insert("ml_model_stage_events", [[row["model_name"], row["model_version"], stage, row["updated_at"]]],
                  column_names=["model_name", "model_version", "stage", "changed_at"])
    mlflow_mirror.log_stage(row["model_name"], row["model_version"], stage)


def promote(client: Client, name: str, version: str, stage: str = "production") -> dict:
    """Move ``version`` to ``stage``; promoting to production archives the current production version."""
    if stage not in STAGES:
        raise InvalidInput(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    row = get(client, name, version)
    if stage == "production":
        current = versions(client, name)
        for _, other in current[(current["stage"] == "production") & (current["model_version"] != row["model_version"])].iterrows():
            _set_stage(client, other.to_dict(), "archived")
    _set_stage(client, row, stage)
    return get(client, name, row["model_version"])


def rollback(client: Client, name: str) -> dict:
    """Archive the production version and bring back the one that was production before it."""
    rows = versions(client, name)
    if rows.empty:
        raise NotFound(f"no model named {name!r} is registered: nothing to roll back (`ownlens-ml models list` shows what is)")
    current = rows[rows["stage"] == "production"]
    if current.empty:
        raise NotFound(f"{name} has no production version to roll back")
    history = client.query(PRODUCTION_HISTORY, parameters={"name": name}).result_rows
    now_version = current.iloc[0]["model_version"]
    previous = [v for v, _ in history if v != now_version]
    if not previous:
        raise NotFound(f"{name} {now_version} is the only version that was ever in production: nothing to roll back to")
    _set_stage(client, current.iloc[0].to_dict(), "archived")
    return promote(client, name, previous[0])


def record_run(client: Client, run: dict) -> None:
    """Insert or update (same run_id) one ml_model_training_runs row."""
    row = {
        "run_id": uuid.UUID(run["run_id"]), "model_id": uuid.UUID(run["model_id"]) if run.get("model_id") else None,
        "model_name": run["model_name"], "model_version": run.get("model_version") or "", "status": run["status"],
        "parameters": json.dumps(_clean(run.get("parameters", {})), default=str),
        "metrics": json.dumps(_clean(run.get("metrics", {})), default=str),
        "data_snapshot": json.dumps(run.get("data_snapshot", {}), default=str), "package_version": run["package_version"],
        "error_message": run.get("error_message", ""), "started_at": run["started_at"], "finished_at": run.get("finished_at"),
        "duration_sec": float(run.get("duration_sec", 0.0)),
    }
    client.insert("ml_model_training_runs", [list(row.values())], column_names=list(row.keys()))


UNFINISHED_RUNS = """
SELECT run_id, model_name, started_at FROM ml_model_training_runs FINAL
WHERE status = 'running' AND started_at <= now64(3) - toIntervalSecond({age:UInt32})
"""
INTERRUPTED = "interrupted: the process ended before the run finished (found when the next run started)"


def fail_interrupted_runs(client: Client, live: set[str], age_s: int) -> list[str]:
    """Mark failed the training runs still ``running`` that no live process owns: not in ``live`` (this process's)
    and started at least ``age_s`` ago (0 on the embedded warehouse, which one process at a time may open)."""
    marked = []
    for run_id, name, started in client.query(UNFINISHED_RUNS, parameters={"age": age_s}).result_rows:
        if str(run_id) in live:
            continue
        record_run(client, {"run_id": str(run_id), "model_name": name, "status": "failed", "package_version": "",
                            "started_at": started, "error_message": INTERRUPTED, "parameters": {}})
        marked.append(str(run_id))
    return marked


def runs(client: Client, name: str | None = None, limit: int = 20) -> pd.DataFrame:
    return client.query_df(RUNS, parameters={"name": name or "", "limit": limit})


__all__ = ["register", "versions", "get", "resolve", "read_files", "promote", "rollback", "record_run", "runs",
           "fail_interrupted_runs"]
