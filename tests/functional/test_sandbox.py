"""local.sandbox.prepare: it says it is building only when the artifacts' cache lacks one."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from pipeline.local import sandbox
from pipeline.program import artifacts
from pipeline.program.artifacts import function_zip_path, host_layer_path


@pytest.fixture
def cache_with_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache holding the host layer (a stand-in zip where the builder keeps the real one)
    and the runtime's boto3, but no function zip; pip must never run."""
    with zipfile.ZipFile(host_layer_path(tmp_path), "w") as layer:
        layer.writestr("python/stand_in.py", "")
    sandbox._boto3_runtime_dir(tmp_path / "sandbox").mkdir(parents=True)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a build ran pip: {args}")

    monkeypatch.setattr(artifacts.subprocess, "run", no_pip)
    monkeypatch.setattr(sandbox.subprocess, "run", no_pip)
    return tmp_path


def test_an_empty_cache_has_everything_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert sandbox.pending_builds(tmp_path) == [
        "the function zip",
        "the layer (pip downloads its wheels)",
        "the runtime's boto3 (pip)",
    ]
    # AND prepare says so before it starts (the build itself is another test's)
    caplog.set_level(logging.INFO, logger="imgpipe.local")

    class Stop(Exception):
        pass

    def stop(cache_dir: Path) -> Path:
        raise Stop

    monkeypatch.setattr(sandbox, "build_function_zip", stop)
    with pytest.raises(Stop):
        sandbox.prepare(tmp_path)
    assert [r.getMessage() for r in caplog.records] == [
        "Building the function zip, the layer (pip downloads its wheels) and the runtime's "
        "boto3 (pip)..."
    ]


def test_prepare_says_what_it_builds_and_then_nothing(
    cache_with_layer: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a cache without the function zip WHEN prepare runs THEN it says it builds that
    caplog.set_level(logging.INFO, logger="imgpipe.local")
    image = sandbox.prepare(cache_with_layer)
    assert [r.getMessage() for r in caplog.records] == ["Building the function zip..."]
    assert function_zip_path(cache_with_layer).is_file()
    assert (image.layer_dir / "python" / "stand_in.py").is_file()
    # WHEN it runs again, everything cached, THEN it says nothing
    caplog.clear()
    assert sandbox.prepare(cache_with_layer) == image
    assert sandbox.pending_builds(cache_with_layer) == []
    assert caplog.records == []


def test_the_function_zip_path_follows_the_sources(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("A = 1\n")
    first = artifacts.build_function_zip(tmp_path / "cache", package)
    assert function_zip_path(tmp_path / "cache", package) == first
    (package / "a.py").write_text("A = 2\n")
    assert not function_zip_path(tmp_path / "cache", package).is_file()
