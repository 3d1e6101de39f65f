"""A/B tests in the registry: which two versions of a model are under test, and which users each arm serves.

Each user is assigned to variant A or B by a hash of (test id, user id), the same in Python (serving) and in
SQL (batch scoring, analysis), so a user keeps their variant for the life of the test. The analysis of a
test's outcomes lives in ``monitoring.abtest``; this module only records tests and routes users.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound

COLUMNS = ("test_id, test_name, model_name, variant_a_version, variant_b_version, traffic_split, status, primary_metric, "
           "start_date, end_date, results, winner, created_at, updated_at")
BY_NAME = f"SELECT {COLUMNS} FROM ml_model_ab_tests FINAL WHERE test_name = {{n:String}} ORDER BY created_at DESC LIMIT 1"
RUNNING = (f"SELECT {COLUMNS} FROM ml_model_ab_tests FINAL WHERE model_name = {{m:String}} AND status = 'running' "
           "ORDER BY created_at DESC LIMIT 1")


def variant(test_id: str, user_id: str, split: float) -> str:
    """'B' for a ``split`` share of users, else 'A'; stable for a (test, user) pair."""
    digest = hashlib.sha256(f"{test_id}:{user_id}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "little") / 2**64 < split else "A"


def variant_sql(user_column: str = "user_id") -> str:
    """:func:`variant` in SQL over ``user_column`` (a UUID column), with parameters ``{test:String}`` and ``{split:Float64}``."""
    return (f"if(reinterpretAsUInt64(substring(SHA256(concat({{test:String}}, ':', toString({user_column}))), 1, 8)) "
            "/ pow(2, 64) < {split:Float64}, 'B', 'A')")


VARIANT_SQL = variant_sql()


@dataclass(frozen=True)
class ABTest:
    test_id: str
    name: str
    model: str
    version_a: str
    version_b: str
    split: float
    status: str
    start: date
    end: date | None
    results: dict
    winner: str

    def version_of(self, user_id: str) -> str:
        """The version that serves ``user_id`` (a canonical id) while the test runs."""
        return self.version_b if variant(self.test_id, user_id, self.split) == "B" else self.version_a


def unseen_dates(candidates, versions: dict, horizon_days: int) -> tuple[list[date], dict[str, str]]:
    """The ``candidates`` neither version learnt from (after each one's last training date and label horizon), and
    why each other date was left out: a readout on a training date would score a version on its own lessons."""
    learned = {arm: m.learned_until(horizon_days) for arm, m in versions.items()}
    kept, excluded = [], {}
    for d in sorted(set(candidates)):
        seen = [f"{arm} ({versions[arm].version})" for arm, until in learned.items() if until is not None and d <= until]
        if seen:
            excluded[str(d)] = f"learnt from by {' and '.join(seen)}"
        else:
            kept.append(d)
    return kept, excluded


def _row_to_test(r) -> ABTest:
    return ABTest(str(r[0]), r[1], r[2], r[3], r[4], float(r[5]), r[6], r[8], r[9], json.loads(r[10] or "{}"), r[11])


def get(client: Client, name: str) -> ABTest:
    rows = client.query(BY_NAME, parameters={"n": name}).result_rows
    if not rows:
        raise NotFound(f"no A/B test named {name!r}: create it with `ownlens-ml abtest create`")
    return _row_to_test(rows[0])


def running(client: Client, model: str) -> ABTest | None:
    """The A/B test of ``model`` now running (the newest, if several), or None."""
    rows = client.query(RUNNING, parameters={"m": model}).result_rows
    return _row_to_test(rows[0]) if rows else None


def new(name: str, model: str, version_a: str, version_b: str, split: float, start: date) -> ABTest:
    return ABTest(str(uuid.uuid4()), name, model, version_a, version_b, split, "running", start, None, {}, "")


def write(client: Client, t: ABTest, created_at: datetime | None = None) -> None:
    """Insert or update (same test id) the test's row."""
    now = datetime.now(timezone.utc)
    client.insert("ml_model_ab_tests", [[uuid.UUID(t.test_id), t.name, t.model, t.version_a, t.version_b, t.split, t.status,
                                         "accuracy", t.start, t.end, json.dumps(t.results, default=str), t.winner,
                                         created_at or now, now]], column_names=COLUMNS.split(", "))
