"""The models a server serves, whatever their kind: the production version of each (reloaded when a promotion or
rollback changes it) and, while an A/B test of a model runs, both of its versions, each user routed to the arm the
test assigns. Each (model, version) is answered by the model's own :class:`~ownlens.ml.models.protocol.Server`."""

from __future__ import annotations

import threading
import time

from clickhouse_connect.driver.client import Client

from ownlens.ml.errors import CorruptArtifact
from ownlens.ml.models import MODELS, get
from ownlens.ml.models.trained import load
from ownlens.ml.registry import store
from ownlens.ml.registry.abtests import ABTest, running

REGISTRY_TTL_S = 2.0  # a promotion, rollback or A/B test reaches the server within this long, without a restart
# whether anything a server serves changed: every registry write and A/B test write has a newer updated_at
REGISTRY_STAMP = "SELECT (SELECT max(updated_at) FROM ml_model_registry), (SELECT max(updated_at) FROM ml_model_ab_tests)"


class ServedModels:
    """A Server per served (model, version); which version a user gets is decided by :meth:`server`."""

    def __init__(self, client: Client, feature_cache_ttl_s: float = 60.0):
        self.client = client
        self.feature_cache_ttl_s = feature_cache_ttl_s
        self._routes: dict[str, tuple[str, ABTest | None]] = {}  # name -> (production version, running test)
        self._servers: dict[tuple[str, str], object] = {}
        self._checked: dict[str, float] = {}
        self._stamp: tuple | None = None  # the registry's and the A/B tests' latest writes at the last full check
        self._lock = threading.Lock()
        self.unloadable: dict[str, str] = {}  # name -> why its version's artifact failed its integrity check

    def _refresh(self, name: str) -> None:
        """Re-read the registry and the running A/B test of ``name``; load any version now needed."""
        model = get(name)
        version, test = store.resolve(self.client, name, "production")["model_version"], running(self.client, name)
        needed = {version} | ({test.version_a, test.version_b} if test else set())
        for v in needed - {v for (n, v) in self._servers if n == name}:
            try:
                trained = load(self.client, name, v)
            except CorruptArtifact as exc:  # a server-side fault: /ready reports it until the version changes
                self.unloadable[name] = f"{v}: {exc}"
                raise
            self._servers[(name, v)] = model.server(self.client, trained, self.feature_cache_ttl_s)
        self.unloadable.pop(name, None)
        for key in [k for k in self._servers if k[0] == name and k[1] not in needed]:
            del self._servers[key]
        self._routes[name] = (version, test)

    def _pick(self, name: str, user_id: str | None):
        version, test = self._routes[name]
        if test is not None and user_id is not None:
            version = test.version_of(user_id)
        return self._servers[(name, version)]

    def server(self, name: str, user_id: str | None = None):
        """The server answering for ``user_id`` (a canonical id; None: the production version), re-checking the
        registry when the last check is older than REGISTRY_TTL_S."""
        get(name)
        now = time.monotonic()
        with self._lock:
            if name not in self._routes or now - self._checked.get(name, 0.0) >= REGISTRY_TTL_S:
                self._refresh(name)
                self._checked[name] = now
            return self._pick(name, user_id)

    def current(self, name: str, user_id: str | None = None):
        """As :meth:`server` if ``name`` is loaded and was checked against the registry lately (the server's
        refresher re-checks every REGISTRY_TTL_S); None otherwise. Never touches the warehouse, so the event
        loop may call it, and a due registry check never stalls requests."""
        if name not in self._routes or time.monotonic() - self._checked.get(name, 0.0) >= 5 * REGISTRY_TTL_S:
            return None
        return self._pick(name, user_id)

    def test_of(self, name: str) -> ABTest | None:
        """The running A/B test of a loaded model, if any."""
        return self._routes.get(name, (None, None))[1]

    def refresh(self) -> None:
        """Re-check the registry for every loaded (or unloadable) model: picks up promotions, rollbacks, A/B tests
        and restored artifacts. While neither the registry nor the A/B tests changed (one small query says so), the
        served versions are simply marked current: an idle server costs the warehouse one query per pass, not two
        per model."""
        stamp = tuple(self.client.query(REGISTRY_STAMP).result_rows[0])
        if stamp == self._stamp and not self.unloadable:
            now = time.monotonic()
            with self._lock:
                for name in self._routes:
                    self._checked[name] = now
            return
        for name in dict.fromkeys([*self._routes, *self.unloadable]):  # a restored artifact is picked up too
            try:
                with self._lock:
                    self._refresh(name)
                    self._checked[name] = time.monotonic()
            except CorruptArtifact:
                pass  # still recorded in unloadable; the served version (if any) keeps answering
        self._stamp = stamp  # read before the checks: a change made during them is seen by the next pass

    def preload(self) -> None:
        """Load every registered model's served versions (at start-up, so first requests do not wait and /ready
        knows at once about an artifact that does not load)."""
        for name in (n for n in store.registered_names(self.client) if n in MODELS):
            try:
                self.server(name)
            except CorruptArtifact:
                pass  # recorded in unloadable
            except Exception as exc:  # noqa: BLE001 - one model's trouble must not stop the others loading
                self.unloadable[name] = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__

    def loaded(self) -> dict[str, str]:
        return {name: f"A/B {test.name}: {test.version_a} | {test.version_b}" if test else version
                for name, (version, test) in self._routes.items()}
