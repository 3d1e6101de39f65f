"""UUID columns for simulated rows: random version-4 ids drawn from a seeded generator, as Arrow columns."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa


def uuid_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random version-4 UUIDs as an (n, 16) byte array (the same for the same generator state)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw


def uuid_table(ids) -> np.ndarray:
    """Known UUIDs as an (n, 16) byte array, for indexing by position."""
    return np.frombuffer(b"".join(u.bytes for u in ids), dtype=np.uint8).reshape(len(ids), 16)


def uuid_array(raw: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow fixed-size binary column that ClickHouse reads as UUID."""
    n = len(raw)
    buffers = [None, pa.py_buffer(np.ascontiguousarray(raw).tobytes())]
    null_count = 0
    if valid is not None and not valid.all():
        buffers[0] = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
        null_count = int(n - valid.sum())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, buffers, null_count=null_count)


def to_uuid_list(raw: np.ndarray) -> list:
    return [uuid.UUID(bytes=row.tobytes()) for row in raw]
