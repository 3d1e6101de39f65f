"""The API against its own OpenAPI: generated requests (schemathesis) for every operation, over a live server on a
loopback port, find no server error and nothing the contract does not say (statuses, response shapes, what is
accepted and what refused). A short run here; BENCHMARKS.md has the long one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import serving

from ownlens.ml.registry import store
from ownlens.ml.serving.app import create_app
from ownlens.ml.settings import Settings


@pytest.fixture(scope="module")
def contract(labelled, trained):
    for name, result in trained.items():
        store.promote(labelled, name, result.model.version)
    with serving(create_app(Settings(api_keys=None), labelled)) as url:
        yield url


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
