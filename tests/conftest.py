"""Shared fixtures: one real chDB warehouse per test run (chDB allows one directory per process), one database per use."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from datetime import date

import pytest

from ownlens.ml import schema
from ownlens.ml.data.loaders import reload_reference_dictionaries
from ownlens.ml.features.build import build_features
from ownlens.ml.simulation import SimulationConfig, simulate
from ownlens.ml.warehouse import connect, embedded_dsn

# artifacts and reports of in-process tests go to a throw-away home, never ~/.ownlens
os.environ["OWNLENS_HOME"] = tempfile.mkdtemp(prefix="ownlens-test-home-")

SMALL = SimulationConfig(users=3_000, days=85, start=date(2026, 1, 5), seed=11)
# 30 days apart: a time split trains only on dates whose 30-day labels were complete by the test date
FEATURE_DATES = [date(2026, 1, 26), date(2026, 2, 25)]


@pytest.fixture(scope="session")
def warehouse_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("warehouse"))


@pytest.fixture(scope="session")
def make_db(warehouse_path):
    """Open a new, empty database in the test warehouse: ``make_db(init=True)`` returns its client."""

    def make(init: bool = True):
        client = connect(embedded_dsn(warehouse_path, f"t_{uuid.uuid4().hex[:10]}"))
        if init:
            schema.apply(client)
        return client

    return make


@contextmanager
def serving(app):
    """``app`` under uvicorn on a free loopback port, in a thread: yields its base URL (what a client's socket sees)."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


TABLES = ("SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree' "
          "AND name != 'ownlens_schema_migrations'")


def copy_of(source, make_db, simulator: bool = True):
    """A new database with every row of ``source``'s: the same publisher without simulating it again; without
    ``simulator``, without the simulator's tables, as a real publisher's warehouse is."""
    client = make_db()
    if simulator:
        schema.create_simulator_tables(client)
    for (table,) in client.query(TABLES, parameters={"db": source.database}).result_rows:
        if table.startswith("sim_") and not simulator:
            continue
        client.command("INSERT INTO {t:Identifier} SELECT * FROM {s:Identifier}.{t:Identifier}",
                       parameters={"t": table, "s": source.database})
    reload_reference_dictionaries(client)
    return client


@pytest.fixture(scope="session")
def sim(make_db):
    """A small simulated publisher with features built for two dates; treat as read-only."""
    client = make_db()
    simulate(client, SMALL)
    reload_reference_dictionaries(client)
    for d in FEATURE_DATES:
        build_features(client, d)
    return client


@pytest.fixture
def db(make_db):
    return make_db()


@pytest.fixture(scope="session")
def labelled(sim, make_db):
    """The same publisher in its own database, for training (models write to its ml_* tables)."""
    return copy_of(sim, make_db)


@pytest.fixture(scope="session")
def trained(labelled):
    """Every registered model trained once on ``labelled`` and promoted: {name: TrainingResult}."""
    from ownlens.ml.models import get, names
    from ownlens.ml.models.runs import train
    from ownlens.ml.registry import store

    out = {}
    for name in names():
        out[name] = train(get(name), labelled)
        store.promote(labelled, name, out[name].model.version)
    return out
