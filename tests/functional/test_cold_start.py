"""The cold start's import: what `import lambda_pkg.handler` (Lambda's init phase) loads.

boto3 and botocore come with the first client, not the import; what only some images need
(HEIF's library) comes with the first such image. benchmarks/coldstart.py times the import
from the deployed artifacts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import coldstart
from tests.support import REPO


def loaded_by_handler_import() -> set[str]:
    code = "import sys, lambda_pkg.handler; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return {name.split(".")[0] for name in done.stdout.split()}


def test_importing_the_handler_loads_no_boto3_and_no_heif() -> None:
    # GIVEN a fresh interpreter WHEN it imports the handler THEN boto3 waits for a client
    assert loaded_by_handler_import() & {"boto3", "botocore", "pillow_heif"} == set()


def test_client_error_is_botocores() -> None:
    from botocore.exceptions import ClientError

    from lambda_pkg import clients

    assert clients.client_error() is ClientError


@pytest.mark.slow  # builds the real layer with pip (cached in tmp_path for this test only)
def test_the_benchmark_imports_the_handler_from_the_built_artifacts(tmp_path: Path) -> None:
    figures = coldstart.measure("python3.12", samples=3, cache_dir=tmp_path)
    if "error" in figures:
        pytest.skip(str(figures["error"]))
    assert figures["boto3_imported"] is False
    # Three samples on a shared machine: too few for the target, enough for the ordering.
    assert figures["with_pyc_ms"] < figures["without_pyc_ms"]
    assert coldstart.report(figures)[-1].split()[0] in ("PASS", "FAIL")
