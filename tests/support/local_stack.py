"""The local stack for end-to-end tests: a stack of its own per test, and its waits."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from pipeline.aws import CREDENTIALS
from pipeline.cli import ops
from pipeline.local.runner import LocalStack

FAST_RETRIES = (0.1, 0.2)
_stack_numbers = itertools.count()
AWS_CLI = Path(sys.executable).with_name("aws")


def new_stack(**options) -> LocalStack:
    # moto's backends are per process: every stack in this test run gets its own names.
    name = f"t{os.getpid() % 1000}-{next(_stack_numbers)}"
    options.setdefault("workers", 2)
    options.setdefault("retry_delays_s", FAST_RETRIES)
    return LocalStack(stack=name, write_state=False, **options)


def aws_cli(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run(
        [str(AWS_CLI), "--endpoint-url", endpoint, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )


def wait_final(target, keys, timeout_s=60):
    results = ops.wait_for(target, keys, lambda e: e.get("status") in ("ok", "failed"), timeout_s)
    missing = [k for k, v in results.items() if v is None]
    assert not missing, f"never processed: {missing}"
    return results
