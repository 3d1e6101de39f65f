"""Errors a user can act on: one root, a few kinds, each with an exit code and an HTTP status."""


class OwnLensError(Exception):
    """Base of every error OwnLens reports to a user; the message says what is wrong and how to fix it."""

    exit_code = 1
    http_status = 500


class InvalidInput(OwnLensError):
    """A parameter or input value is wrong (bad date, unknown brand, non-positive count...)."""

    exit_code = 2
    http_status = 422


class NotFound(OwnLensError):
    """Something asked for does not exist (a brand, a user, a model, a date without data)."""

    exit_code = 3
    http_status = 404


class WarehouseUnavailable(OwnLensError):
    """The warehouse cannot be reached, or another process holds the embedded one."""

    exit_code = 4
    http_status = 503


class SchemaMissing(OwnLensError):
    """The warehouse has not been initialised (run `ownlens-ml init`)."""

    exit_code = 5
    http_status = 503


class CorruptArtifact(OwnLensError):
    """A model artifact fails its integrity check (checksum, manifest, or a booster file that does not load): a
    server-side fault to repair (restore the file, or retrain), never the caller's."""

    exit_code = 6
    http_status = 500
