"""Creates and migrates the OwnLens warehouse schema; each numbered .sql file here is one migration."""

from __future__ import annotations

import logging
import re
from importlib import resources

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import InvalidInput, SchemaMissing
from ownlens.ml.warehouse import table_exists

MIGRATIONS_TABLE = "ownlens_schema_migrations"
# the simulator's tables (its true answers) exist only where it runs: ``create_simulator_tables``, called by simulate
SIMULATOR_STATEMENT = re.compile(r"^(?:CREATE TABLE(?: IF NOT EXISTS)?|ALTER TABLE)\s+(sim_[A-Za-z0-9_]*)\b", re.IGNORECASE)
ALTER_TABLE = re.compile(r"^ALTER TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\b", re.IGNORECASE)
CURRENT_DATABASE = "SELECT currentDatabase()"


def migrations() -> list[tuple[int, str, list[str]]]:
    """``(version, name, statements)`` for every migration file, in order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = re.fullmatch(r"(\d+)_(\w+)\.sql", entry.name)
        if match:
            text = entry.read_text()
            body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
            statements = [s.strip() for s in body.split(";") if s.strip()]
            found.append((int(match[1]), match[2], statements))
    return sorted(found)


def current_version(client: Client) -> int:
    if not table_exists(client, MIGRATIONS_TABLE):
        return 0
    return int(client.command(f"SELECT max(version) FROM {MIGRATIONS_TABLE}") or 0)


def latest_version() -> int:
    return migrations()[-1][0]


def apply(client: Client) -> list[int]:
    """Apply every migration not yet applied; idempotent. Returns the versions applied now."""
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version UInt32, name String, applied_at DateTime64(0, 'UTC') DEFAULT now()) "
        "ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )
    done = current_version(client)
    database = client.command(CURRENT_DATABASE)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise InvalidInput(f"database name {database!r}: use letters, digits and underscores (it is written into dictionary sources)")
    applied = []
    views = {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'View'").result_rows}
    for version, name, statements in migrations():
        if version <= done:
            continue
        for statement in statements:  # DDL takes no query parameters: {database} is the one name filled in, checked above
            altered = ALTER_TABLE.match(statement)
            if altered and altered[1] in views:  # a mapped input table: its view already has every contract column
                continue
            simulator = SIMULATOR_STATEMENT.match(statement)
            if simulator and not table_exists(client, simulator[1]):  # (made, with its later changes, by simulate)
                continue
            client.command(statement.replace("{database}", database))
        client.command(
            f"INSERT INTO {MIGRATIONS_TABLE} (version, name) SELECT {{v:UInt32}}, {{n:String}}",
            parameters={"v": version, "n": name},
        )
        applied.append(version)
    return applied


def create_simulator_tables(client: Client) -> None:
    """The simulator's tables as the migrations define them (every statement on a ``sim_`` table, in order: each is
    idempotent); ``apply`` leaves them out of a warehouse the simulator never ran in."""
    for _, _, statements in migrations():
        for statement in statements:
            if SIMULATOR_STATEMENT.match(statement):
                client.command(statement)


def require(client: Client) -> None:
    """Raise :class:`SchemaMissing` unless the warehouse has the latest schema."""
    version = current_version(client)
    if version < latest_version():
        raise SchemaMissing(
            f"the warehouse schema is at version {version}, this OwnLens needs {latest_version()}: run `ownlens-ml init`"
        )


# -- the contract: the tables and columns OwnLens reads and writes, checked against a warehouse that has its own ----
TABLE_STATEMENT = re.compile(r"^(CREATE TABLE(?: IF NOT EXISTS)?|ALTER TABLE|DROP TABLE(?: IF EXISTS)?)\s+([A-Za-z_][A-Za-z0-9_]*)\b",
                             re.IGNORECASE)
CONTRACT_PREFIX = "_ownlens_contract_"
COLUMNS = "SELECT table, name, type FROM system.columns WHERE database = {db:String} ORDER BY table, position"


def _base_type(type_: str) -> str:
    """A column type without LowCardinality(...): storage, not meaning."""
    return re.sub(r"^LowCardinality\((.*)\)$", r"\1", type_.strip())


def contract(client: Client) -> list[tuple[str, str, str]] | None:
    """Every (table, column, type) the migrations define, read from a scratch database they are run in (then
    dropped); None when the server user may not create one."""
    import uuid

    for (stale,) in client.query("SELECT name FROM system.databases WHERE startsWith(name, {p:String})",
                                 parameters={"p": CONTRACT_PREFIX}).result_rows:  # (left by a killed check)
        client.command("DROP DATABASE IF EXISTS {d:Identifier}", parameters={"d": stale})
    scratch = f"{CONTRACT_PREFIX}{uuid.uuid4().hex[:10]}"
    try:
        client.command("CREATE DATABASE {d:Identifier}", parameters={"d": scratch})
    except Exception as exc:  # a server user without CREATE DATABASE: say so, do not fail init over the check
        logging.getLogger(__name__).warning("contract not checked: cannot create a scratch database (%s)",
                                            (str(exc).splitlines() or [""])[0][:200])
        return None
    try:
        for _, _, statements in migrations():
            for statement in statements:
                found = TABLE_STATEMENT.match(statement)
                if found:  # our own DDL, its table name qualified with the scratch database
                    client.command(f"{found[1]} {scratch}.{found[2]}{statement[found.end():]}")
        return [tuple(r) for r in client.query(COLUMNS, parameters={"db": scratch}).result_rows]
    finally:
        client.command("DROP DATABASE IF EXISTS {d:Identifier}", parameters={"d": scratch})


def mismatches(client: Client) -> list[str]:
    """Every way the warehouse's tables differ from the contract (the tables the migrations create, with their
    columns and types): a missing table or column, or a column of another type (LowCardinality aside). Columns a
    table has beyond the contract are fine."""
    database = client.command(CURRENT_DATABASE)
    expected = contract(client)
    if expected is None:
        return []
    actual = {(t, c): ty for t, c, ty in client.query(COLUMNS, parameters={"db": database}).result_rows}
    tables = {t for t, _ in actual}
    out, missing_tables = [], set()
    for table, column, type_ in expected:
        if table.startswith("sim_") and table not in tables:  # the simulator's, where it never ran
            continue
        if table not in tables:
            if table not in missing_tables:
                out.append(f"table {table} is missing")
                missing_tables.add(table)
        elif (table, column) not in actual:
            out.append(f"{table} has no column {column} ({type_})")
        elif _base_type(actual[(table, column)]) != _base_type(type_):
            out.append(f"{table}.{column} is {actual[(table, column)]}; the contract says {type_}")
    return out
