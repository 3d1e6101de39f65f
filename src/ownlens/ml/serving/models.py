"""The models a server serves: the production version of each, reloaded when a promotion changes it, and
while an A/B test of a model runs, both of its versions, each user routed to the arm the test assigns."""

from __future__ import annotations

import threading
import time

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound
from ownlens.ml.models import get_spec
from ownlens.ml.models.model import TrainedModel
from ownlens.ml.models.prediction import Scorer
from ownlens.ml.monitoring import abtest
from ownlens.ml.registry import store

REGISTRY_TTL_S = 2.0  # a promotion, rollback or A/B test reaches the server within this long, without a restart


class ServedModels:
    """A :class:`Scorer` per served (model, version); which version a user gets is decided by :meth:`scorer`."""

    def __init__(self, client: Client, feature_cache_ttl_s: float = 60.0):
        self.client = client
        self.feature_cache_ttl_s = feature_cache_ttl_s
        self._routes: dict[str, tuple[str, abtest.ABTest | None]] = {}  # name -> (production version, running test)
        self._scorers: dict[tuple[str, str], Scorer] = {}
        self._checked: dict[str, float] = {}
        # task model name -> (loaded versions, production version, running A/B test, checked at)
        self._tasks: dict[str, tuple[dict[str, TrainedModel], str, abtest.ABTest | None, float]] = {}
        self._lock = threading.Lock()

    def _production_version(self, name: str) -> str:
        try:
            return store.get(self.client, name, "production")["model_version"]
        except NotFound:
            return store.get(self.client, name, None)["model_version"]

    def _refresh(self, name: str) -> None:
        """Re-read the registry and the running A/B test of ``name``; load any version now needed."""
        spec = get_spec(name)
        version, test = self._production_version(name), abtest.running(self.client, name)
        needed = {version} | ({test.version_a, test.version_b} if test else set())
        for v in needed - {v for (n, v) in self._scorers if n == name}:
            self._scorers[(name, v)] = Scorer(spec, self.client, store.load(self.client, name, v),
                                              cache_ttl_s=self.feature_cache_ttl_s)
        for key in [k for k in self._scorers if k[0] == name and k[1] not in needed]:
            del self._scorers[key]
        self._routes[name] = (version, test)

    def _pick(self, name: str, user_id: str | None) -> Scorer:
        version, test = self._routes[name]
        if test is not None and user_id is not None:
            version = test.version_b if abtest.variant(test.test_id, user_id, test.split) == "B" else test.version_a
        return self._scorers[(name, version)]

    def scorer(self, name: str, user_id: str | None = None) -> Scorer:
        """The scorer serving ``user_id`` (a canonical id; None: the production version), re-checking the
        registry when the last check is older than REGISTRY_TTL_S."""
        get_spec(name)
        now = time.monotonic()
        with self._lock:
            if name not in self._routes or now - self._checked.get(name, 0.0) >= REGISTRY_TTL_S:
                self._refresh(name)
                self._checked[name] = now
            return self._pick(name, user_id)

    def current(self, name: str, user_id: str | None = None) -> Scorer | None:
        """As :meth:`scorer` if ``name`` is loaded and was checked against the registry lately (the server's
        refresher re-checks every REGISTRY_TTL_S); None otherwise. Never touches the warehouse, so the event
        loop may call it, and a due registry check never stalls requests."""
        if name not in self._routes or time.monotonic() - self._checked.get(name, 0.0) >= 5 * REGISTRY_TTL_S:
            return None
        return self._pick(name, user_id)

    def test_of(self, name: str) -> abtest.ABTest | None:
        """The running A/B test of a loaded model, if any."""
        return self._routes.get(name, (None, None))[1]

    def refresh(self) -> None:
        """Re-check the registry for every loaded model (picks up promotions, rollbacks and A/B tests)."""
        for name in list(self._routes):
            self.scorer(name)

    def task(self, name: str, user_id: str | None = None) -> TrainedModel:
        """The version of a task model (segmentation, recommendation, ad_placement) serving ``user_id``: production,
        or their arm's while an A/B test runs; re-checked against the registry every REGISTRY_TTL_S."""
        now = time.monotonic()
        with self._lock:
            entry = self._tasks.get(name)
            if entry is None or now - entry[3] >= REGISTRY_TTL_S:
                version, test = self._production_version(name), abtest.running(self.client, name)
                loaded = entry[0] if entry is not None else {}
                needed = {version} | ({test.version_a, test.version_b} if test else set())
                models = {v: loaded.get(v) or store.load(self.client, name, v) for v in needed}
                self._tasks[name] = entry = (models, version, test, now)
            models, version, test = entry[0], entry[1], entry[2]
            if test is not None and user_id is not None:
                version = test.version_b if abtest.variant(test.test_id, user_id, test.split) == "B" else test.version_a
            return models[version]

    def loaded(self) -> dict[str, str]:
        out = {}
        for name, (version, test) in self._routes.items():
            out[name] = f"A/B {test.name}: {test.version_a} | {test.version_b}" if test else version
        for name, (_, version, test, _) in self._tasks.items():
            out[name] = f"A/B {test.name}: {test.version_a} | {test.version_b}" if test else version
        return out


class AnswerCache:
    """Recent answers by key for ``ttl_s`` seconds (bounded: cleared when it reaches ``max_items``)."""

    def __init__(self, ttl_s: float, max_items: int = 100_000):
        self.ttl_s, self.max_items = ttl_s, max_items
        self._items: dict = {}

    def get(self, key):
        hit = self._items.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def put(self, key, value) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl_s, value)
