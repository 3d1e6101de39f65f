"""What every ownlens-ml command shares: the app, its consoles, logging, and small parsing and printing helpers.

Kept light: importing it (and so ``ownlens-ml --help``) loads typer and rich only; each command imports what it
needs when it runs.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import date
from typing import Optional

import typer
from rich.console import Console

from ownlens.ml.models import names

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="OwnLens ML: features, models and serving on your ClickHouse warehouse.")
console = Console(stderr=True)
out = Console()
log = logging.getLogger("ownlens")

DSN_HELP = "Warehouse DSN: chdb:///abs/path (embedded) or http://user:pass@host:8123/db; default $OWNLENS_DSN, else $OWNLENS_HOME/warehouse."
MODEL_NAMES = ", ".join(names())

Dsn = Optional[str]


def dsn_option():
    return typer.Option(None, "--dsn", help=DSN_HELP)


def json_option(what: str = "the result"):
    return typer.Option(False, "--json", help=f"Print {what} as JSON.")


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, the message as ``event``, the record's ``fields``, and
    a traceback (escaped into the one line) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                   "logger": record.name, "event": record.getMessage()}
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _PlainFormatter(logging.Formatter):
    """``LEVEL logger: message key=value ...`` (the record's ``fields``)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        record.message_with_fields = record.getMessage() + "".join(f" {k}={v}" for k, v in fields.items())
        text = f"{record.levelname} {record.name}: {record.message_with_fields}"
        return text + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


LOG_JSON = False  # set by --log-json: errors, too, are then JSON lines


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details to stderr."),
    log_json: bool = typer.Option(False, "--log-json", help="Write logs (and errors) to stderr as one JSON object per line, "
                                                            "without progress bars (for log shippers)."),
):
    global LOG_JSON
    LOG_JSON = log_json
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_json else _PlainFormatter())
    for name, level in (("ownlens", logging.INFO if verbose or log_json else logging.WARNING), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)  # its failures reach the user as our one-line errors
    if log_json:
        console.quiet = True  # progress bars and status lines would break the one-object-per-line stream


def report_error(message: str) -> None:
    """An error's one line on stderr: ``error: ...``, or with --log-json a JSON object."""
    if LOG_JSON:
        log.error(message)
    else:
        sys.stderr.write(f"error: {message}\n")


def parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    from ownlens.ml.data.loaders import as_date  # (imported only when a date is given: --help stays light)

    return as_date(value, option)


def connect(dsn: str | None):
    from ownlens.ml.warehouse import connect as open_warehouse

    return open_warehouse(dsn)


def model(name: str):
    """The model called ``name`` (NotFound, exit 3, naming the known ones otherwise)."""
    from ownlens.ml.models import get

    return get(name)


def progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def emit(payload: dict, as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(payload, default=str))
        return
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in payload.items():
        table.add_row(str(key), str(value))
    out.print(table)


def rounded(obj):
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def brief(value) -> str:
    """A nested metric compactly: floats to 3 significant digits, dicts as {k v, ...}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} {brief(v)}" for k, v in value.items()) + "}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def metrics_table(title: str, metrics: dict, oracle: dict | None, targets: dict):
    from rich.table import Table

    from ownlens.ml.models.metrics import meets

    table = Table(title=title)
    for column in ("metric", "model", "oracle", "seed target"):
        table.add_column(column, justify="right")
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            o = (oracle or {}).get(key)
            target = targets.get(key)
            mark = "" if target is None else (" ✓" if meets(key, value, target) else " ✗")
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown, "" if not isinstance(o, (int, float)) else f"{o:.4f}", "" if target is None else f"{target}{mark}")
    return table
