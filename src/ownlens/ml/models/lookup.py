"""A :class:`~ownlens.ml.models.protocol.Server` for models whose single lookup is one function of (ids, date,
options): task models give it their lookup and get the protocol's frame, records and cache for free."""

from __future__ import annotations

import time
from typing import Callable

import pandas as pd
from clickhouse_connect.driver.client import Client

from ownlens.ml.models.scoring import LatestDate, canonical_key


def lookup_frame(records: list[dict], unknown: list, message: str) -> pd.DataFrame:
    """A server's records as the protocol's frame: ``attrs["unknown"]`` lists the unknown keys, ``attrs["message"]``
    says ``message`` (with how many, and the first) when there are any."""
    out = pd.DataFrame(records)
    out.attrs["unknown"] = unknown
    if unknown:
        out.attrs["message"] = f"{len(unknown)} of the requested {message}: {unknown[0]}"
    return out


class LookupServer:
    """Answers with ``lookup(client, model, keys, d, **options) -> (records, unknown keys)``, one record per known key.

    With ``cache_ttl_s`` > 0 and ``cacheable`` the records of a (key, date, options) are reused for that long, so a
    repeated request is answered from memory (:meth:`cached_record`); the latest feature date is re-read every minute.
    ``explode`` names a list field of a record that :meth:`frame` turns into one row per item (recommendations).
    """

    CACHE_MAX_ENTRIES = 100_000

    def __init__(self, client: Client, model, lookup: Callable, entity: tuple[str, ...] = ("user_id",),
                 cache_ttl_s: float = 0.0, cacheable: bool = False, explode: str | None = None):
        self.client, self.model, self.lookup, self.entity = client, model, lookup, entity
        self.cache_ttl_s = cache_ttl_s if cacheable else 0.0
        self.explode = explode
        self.feature_date = LatestDate(client)
        self._cache: dict = {}

    @staticmethod
    def _options_key(options: dict) -> tuple:
        return tuple(sorted((k, v) for k, v in options.items() if k != "return_proba"))

    def records(self, keys: list, feature_date=None, **options) -> tuple[list[dict], list]:
        keys = [canonical_key(self.entity, k) for k in keys]
        d = self.feature_date(feature_date)
        options = {k: v for k, v in options.items() if k != "return_proba"}
        records, unknown = self.lookup(self.client, self.model, keys, d, **options)
        if self.cache_ttl_s > 0 and feature_date is None:
            if len(self._cache) > self.CACHE_MAX_ENTRIES:
                self._cache.clear()
            expires, found = time.monotonic() + self.cache_ttl_s, {r[self.entity[0]]: r for r in records}
            for key in keys:
                if key in found:
                    self._cache[(d, key, self._options_key(options))] = (expires, found[key])
        return records, unknown

    def cached_record(self, key, **options) -> dict | None:
        latest = self.feature_date.cached()
        if self.cache_ttl_s <= 0 or latest is None or not isinstance(key, str):
            return None
        now = time.monotonic()
        hit = self._cache.get((latest, key.lower(), self._options_key(options)))
        return hit[1] if hit is not None and hit[0] > now else None

    def frame(self, keys: list, feature_date=None, **options) -> pd.DataFrame:
        records, unknown = self.records(keys, feature_date, **options)
        if self.explode:
            rows = [{**{k: v for k, v in r.items() if k != self.explode}, **item} for r in records for item in r[self.explode]]
        else:
            rows = records
        out = pd.DataFrame(rows)
        out.attrs["unknown"] = out.attrs["unknown_users"] = unknown
        if unknown:
            shown = ", ".join(str(k) for k in unknown[:3])
            out.attrs["message"] = f"{len(unknown)} of the requested ids are unknown on that date: {shown}"
        return out
