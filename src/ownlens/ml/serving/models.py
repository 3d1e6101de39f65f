"""The models a server serves: the production version of each, reloaded when a promotion changes it."""

from __future__ import annotations

import threading
import time

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import NotFound
from ownlens.ml.models import get_spec
from ownlens.ml.models.prediction import Scorer
from ownlens.ml.registry import store

REGISTRY_TTL_S = 2.0  # a promotion reaches the server within this long, without a restart


class ServedModels:
    """One :class:`Scorer` per model name, for the version currently in production (else the latest)."""

    def __init__(self, client: Client, feature_cache_ttl_s: float = 60.0):
        self.client = client
        self.feature_cache_ttl_s = feature_cache_ttl_s
        self._scorers: dict[str, tuple[str, Scorer]] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _current_version(self, name: str) -> str:
        try:
            return store.get(self.client, name, "production")["model_version"]
        except NotFound:
            return store.get(self.client, name, None)["model_version"]

    def scorer(self, name: str) -> Scorer:
        spec = get_spec(name)
        now = time.monotonic()
        with self._lock:
            cached = self._scorers.get(name)
            if cached and now - self._checked.get(name, 0.0) < REGISTRY_TTL_S:
                return cached[1]
            version = self._current_version(name)
            if not cached or cached[0] != version:
                model = store.load(self.client, name, version)
                cached = (version, Scorer(spec, self.client, model, cache_ttl_s=self.feature_cache_ttl_s))
                self._scorers[name] = cached
            self._checked[name] = now
            return cached[1]

    def current(self, name: str) -> Scorer | None:
        """The scorer for ``name`` if it is loaded and was checked against the registry lately (the server's
        refresher re-checks every REGISTRY_TTL_S); None otherwise. Never touches the warehouse, so the event
        loop may call it, and a due registry check never stalls requests."""
        cached = self._scorers.get(name)
        if cached and time.monotonic() - self._checked.get(name, 0.0) < 5 * REGISTRY_TTL_S:
            return cached[1]
        return None

    def refresh(self) -> None:
        """Re-check the registry for every loaded model (picks up promotions and rollbacks)."""
        for name in list(self._scorers):
            self.scorer(name)

    def loaded(self) -> dict[str, str]:
        return {name: version for name, (version, _) in self._scorers.items()}
