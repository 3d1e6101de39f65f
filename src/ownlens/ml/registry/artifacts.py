"""Model artifacts: one zip of safe files (JSON, XGBoost UBJ, LightGBM text, skops), checked by sha256.

Nothing here unpickles: a file that is not an OwnLens artifact, or whose checksum differs from
the one registered, is refused before any of it is read as a model.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path

from ownlens.ml.errors import CorruptArtifact, InvalidInput, NotFound

MANIFEST = "manifest.json"
FORMAT = "ownlens-model/1"
ESTIMATOR_MEMBERS = {"estimator.json", "model.ubj", "model.txt", "model.skops"}
# an estimator made of two (e.g. a value and a rate) keeps each part's members in a folder of that name
ESTIMATOR_PARTS = ("primary", "secondary")
ALLOWED_MEMBERS = {"model.json", MANIFEST} | ESTIMATOR_MEMBERS | {f"{p}/{m}" for p in ESTIMATOR_PARTS for m in ESTIMATOR_MEMBERS}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _open(uri: str, mode: str):
    if "://" in uri and not uri.startswith("file://"):
        try:
            import fsspec
        except ImportError:  # pragma: no cover - depends on the environment
            raise InvalidInput(f"{uri} needs fsspec to read or write: pip install fsspec (and its backend)") from None
        return fsspec.open(uri, mode).open()
    path = Path(uri.removeprefix("file://")).expanduser()
    if "w" in mode:
        path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, mode)


def write_artifact(uri: str, files: dict[str, bytes]) -> str:
    """Write ``files`` as an artifact at ``uri`` (a path or fsspec URL); returns the artifact's sha256."""
    unknown = set(files) - ALLOWED_MEMBERS
    if unknown:
        raise ValueError(f"not an artifact member: {sorted(unknown)}")
    manifest = {"format": FORMAT, "files": {name: sha256(data) for name, data in files.items()}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    data = buffer.getvalue()
    with _open(uri, "wb") as fh:
        fh.write(data)
    return sha256(data)


def read_artifact(uri: str, expected_sha256: str | None = None) -> dict[str, bytes]:
    """The files of the artifact at ``uri``, after checking its sha256 (when given) and its manifest."""
    try:
        with _open(uri, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise NotFound(f"model artifact {uri} does not exist") from None
    if expected_sha256 and sha256(data) != expected_sha256:
        raise CorruptArtifact(f"model artifact {uri} has been modified since it was registered (sha256 mismatch): "
                              "restore it, or retrain")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if MANIFEST not in names or not names <= ALLOWED_MEMBERS:
                raise InvalidInput(f"{uri} is not an OwnLens model artifact (unexpected contents {sorted(names - ALLOWED_MEMBERS)[:3]})")
            try:
                manifest = json.loads(zf.read(MANIFEST))
                files = {name: zf.read(name) for name in names if name != MANIFEST}
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:  # a damaged member
                raise CorruptArtifact(f"model artifact {uri} is corrupt: a member does not decompress or parse "
                                      f"({_first_line(exc)}): restore it, or retrain") from None
    except zipfile.BadZipFile:
        raise InvalidInput(f"{uri} is not an OwnLens model artifact (not a zip; pickles are never loaded)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or set(manifest.get("files", {})) != set(files):
        raise CorruptArtifact(f"model artifact {uri} is corrupt: its manifest does not list its files: restore it, or retrain")
    for name, data in files.items():
        if sha256(data) != manifest["files"][name]:
            raise CorruptArtifact(f"model artifact {uri} is corrupt: {name} does not match its checksum: restore it, or retrain")
    return files


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
