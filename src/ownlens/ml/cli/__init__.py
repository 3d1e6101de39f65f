"""The ownlens-ml command line: one place that turns OwnLens errors into one-line messages and exit codes.

Commands live by resource (``data``, ``models``, ``monitoring``, ``serving``, ``run``) on the one app in
``common``; every command imports the heavy libraries it needs when it runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys

from ownlens.ml.cli import data, models, monitoring, run, serving  # noqa: F401  (they register their commands)
from ownlens.ml.cli.common import app, console
from ownlens.ml.errors import OwnLensError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: runs the app and turns errors into one line and an exit code, never a traceback."""
    try:
        app()
    except OwnLensError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if type(exc).__module__.startswith("clickhouse_connect"):  # the warehouse's own errors, without importing its client
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            sys.stderr.write(f"warehouse error: {first}\n")
            sys.exit(4)
        raise
