"""Settings read once from the environment (prefix OWNLENS_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where OwnLens keeps its warehouse, artifacts and reports.

    ``OWNLENS_HOME`` (default ``~/.ownlens``) holds the embedded warehouse and outputs;
    ``OWNLENS_DSN`` points at another warehouse (``chdb:///abs/path`` or ``http://user:pass@host:8123/db``).
    """

    model_config = SettingsConfigDict(env_prefix="OWNLENS_", extra="ignore")

    home: Path = Path("~/.ownlens")
    dsn: str | None = None
    artifacts: str | None = None  # where model artifacts go: a directory or an fsspec URL
    api_keys: str | None = None  # comma-separated keys the REST API accepts in X-API-Key; unset = open
    feature_cache_ttl_s: float = 60.0  # how long the API reuses a user's features read from the warehouse
    max_body_bytes: int = Field(1_048_576, ge=1024)  # the API's request body limit (a full batch of 1,000 pairs is ~100 kB)
    warehouse_timeout_s: float = Field(30.0, gt=0)  # a ClickHouse server that sends nothing for this long is unavailable

    @field_validator("api_keys")
    @classmethod
    def _some_key(cls, value: str | None) -> str | None:
        # separators alone must not turn authentication off by accident; unset (or empty) leaves the API open
        if value and not any(k.strip() for k in value.split(",")):
            raise ValueError("it holds separators but no key: set comma-separated keys, or unset it to run without keys")
        return value

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def default_dsn(self) -> str:
        return f"chdb://{self.home_dir / 'warehouse'}"

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in (self.api_keys or "").split(",") if k.strip())

    @property
    def artifacts_uri(self) -> str:
        return self.artifacts or str(self.home_dir / "artifacts")

    @property
    def reports_dir(self) -> Path:
        return self.home_dir / "reports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
