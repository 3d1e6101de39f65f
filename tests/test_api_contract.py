"""The API against its own OpenAPI: generated requests (schemathesis) for every operation, over a live server on a
loopback port, find no server error and nothing the contract does not say (statuses, response shapes, what is
accepted and what refused). A short run here; BENCHMARKS.md has the long one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ownlens.ml.registry import store
from ownlens.ml.serving.app import create_app
from ownlens.ml.settings import Settings


@pytest.fixture(scope="module")
def contract(labelled, trained):
    import uvicorn

    for name, result in trained.items():
        store.promote(labelled, name, result.model.version)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(api_keys=None), labelled), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_generated_requests_find_no_server_error_and_no_contract_breach(contract, tmp_path):
    # every check schemathesis has (server errors, undocumented statuses, response schemas, valid data refused,
    # invalid data accepted...), a fixed seed so a failure reproduces; its CLI, as a user would run it
    result = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", f"{contract}/openapi.json", "--checks", "all",
                             "--max-examples", "6", "--seed", "1", "--phases", "examples,coverage,fuzzing",
                             "--report", "junit", "--report-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    summary = result.stdout[-3000:]
    found = "\n".join(line[:400] for line in result.stdout.splitlines() if "curl " in line or "- ST" in line or "Invalid component" in line)
    assert result.returncode == 0, found or summary
    assert "passed" in summary and "failures" not in summary.lower().split("test cases:")[-1], summary
