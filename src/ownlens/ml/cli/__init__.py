"""The ownlens-ml command line: one place that turns OwnLens errors into one-line messages and exit codes.

Commands live by resource (``data``, ``models``, ``monitoring``, ``serving``, ``run``) on the one app in
``common``; every command imports the heavy libraries it needs when it runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

from ownlens.ml.cli import data, models, monitoring, run, serving  # noqa: F401  (they register their commands)
from ownlens.ml.cli.common import app, console, report_error
from ownlens.ml.errors import InvalidInput, OwnLensError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: runs the app and turns errors into one line and an exit code, never a traceback (``-v`` shows the
    traceback of an unexpected error)."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        error = _as_ownlens_error(exc)
        if error is None:
            if "-v" in sys.argv or "--verbose" in sys.argv:
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            error = OwnLensError(f"unexpected {type(exc).__name__}: {first} (run again with -v for the traceback, and "
                                 "please report it)")
        report_error(str(error))
        sys.exit(error.exit_code)


def _as_ownlens_error(exc: Exception) -> OwnLensError | None:
    if isinstance(exc, OwnLensError):
        return exc
    if type(exc).__module__.startswith("clickhouse_connect"):  # the warehouse's own errors: imported only then
        from ownlens.ml.warehouse import as_ownlens_error

        return as_ownlens_error(exc)
    if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic"):  # an OWNLENS_* variable
        first = exc.errors()[0]
        name = "OWNLENS_" + str(first["loc"][0]).upper() if first.get("loc") else "an OWNLENS_ variable"
        return InvalidInput(f"{name} is invalid: {first['msg'].removeprefix('Value error, ')}")
    return None
