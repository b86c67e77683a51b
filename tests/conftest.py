"""Fixtures every test gets (no real AWS credentials; a fresh render process; local stacks'
state and logs in a temporary folder, never the project's .build/local), the `aws` and
`fake_layer` fixtures, and the tiers: tests/reliability and tests/end_to_end are slow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from lambda_pkg import isolated
from pipeline.cli.targets import STATE_DIR, STATE_DIR_VARIABLE
from tests.support import state_guard
from tests.support.aws import AwsWorld

# Every test in these folders is slow (servers, pip, Chromium, loads); elsewhere a test
# says so itself with @pytest.mark.slow. `make test-fast` runs everything else.
SLOW_TIERS = ("reliability", "end_to_end")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        if item.path.relative_to(tests).parts[0] in SLOW_TIERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _local_state_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The environment, not a patch: `imgpipe` processes the tests start inherit it.
    os.environ[STATE_DIR_VARIABLE] = str(tmp_path_factory.mktemp("local-state"))
    before = state_guard.snapshot(STATE_DIR)
    yield
    touched = state_guard.changes(before, state_guard.snapshot(STATE_DIR), STATE_DIR)
    assert not touched, f"tests wrote into {STATE_DIR}: {touched[:10]}"


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never let a test reach a real account, whatever the developer's shell has.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def fake_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """No pip build under Pulumi's mocks: a tiny layer zip; the pairs the program asked for."""
    from tests.support import pulumi_program  # pulumi: only for the tests that use it

    return pulumi_program.fake_layer(tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def _fresh_render_process() -> Iterator[None]:
    # The handler renders in a forked process it keeps (lambda_pkg/isolated.py): a copy of
    # this one as it was when forked. Each test gets its own, forked after its patches.
    isolated.stop()
    yield
    isolated.stop()


@pytest.fixture
def aws() -> Iterator[AwsWorld]:
    with mock_aws():
        yield AwsWorld()
