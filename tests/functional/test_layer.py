"""program.artifacts: the Pillow layer for Lambda's platforms and this host, and the function zip.

The layer tests run pip against PyPI (marked slow); everything else is local.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from pipeline.program import artifacts as layer
from pipeline.program.artifacts import (
    LAMBDA_UNZIPPED_LIMIT,
    ArtifactError,
    build_function_zip,
    build_layer,
    build_layer_for_host,
    check_unzipped_size,
    manylinux_platforms,
)
from tests.support import REPO

ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # EM_AARCH64, EM_X86_64
SO_TAG = {"arm64": "aarch64", "x86_64": "x86_64"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert data[5] == 1, "expected little-endian"
    return struct.unpack_from("<H", data, 18)[0]


# -- platform tags ----------------------------------------------------------------------


def test_manylinux_platforms_cover_every_older_glibc() -> None:
    # pip does not expand manylinux_2_34 to older tags itself; Pillow 13 is manylinux_2_27/2_28.
    tags = manylinux_platforms("arm64", 34)
    assert tags[0] == "manylinux_2_34_aarch64"
    assert {"manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64"} <= set(
        tags
    )
    assert "manylinux_2_35_aarch64" not in tags
    assert all(tag.endswith("_x86_64") for tag in manylinux_platforms("x86_64", 34))


def test_unknown_runtime_or_architecture_is_refused(cache: Path) -> None:
    with pytest.raises(ArtifactError, match=r"python3\.11"):
        build_layer("python3.11", "arm64", cache_dir=cache)
    with pytest.raises(ArtifactError, match="'arm'"):
        build_layer("python3.12", "arm", cache_dir=cache)


def test_size_guard(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/blob.bin", b"\0" * 4096)  # compresses to almost nothing
    assert check_unzipped_size(path) == 4096
    assert LAMBDA_UNZIPPED_LIMIT == 250 * 1024 * 1024
    with pytest.raises(ArtifactError, match=r"unzips to .* over Lambda's"):
        check_unzipped_size(path, limit=4095)


# -- the real layer ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_layer_for_lambda_has_pillow_for_the_architecture(cache: Path, architecture: str) -> None:
    path = build_layer("python3.12", architecture, cache_dir=cache)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        (imaging,) = [
            n for n in names if n.startswith("python/PIL/_imaging.") and n.endswith(".so")
        ]
        machine = elf_machine(archive.read(imaging))
    assert imaging == f"python/PIL/_imaging.cpython-312-{SO_TAG[architecture]}-linux-gnu.so"
    assert machine == ELF_MACHINE[architecture]
    assert all(name.startswith("python/") for name in names)
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert any(n.startswith("python/pillow-13.0.0.dist-info/") for n in names)
    assert check_unzipped_size(path) < LAMBDA_UNZIPPED_LIMIT


@pytest.mark.slow
def test_layer_is_cached_and_not_rebuilt(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = build_layer("python3.12", "arm64", cache_dir=cache)
    stamp = first.stat().st_mtime_ns

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"pip ran again: {args}")

    monkeypatch.setattr(layer.subprocess, "run", no_pip)
    second = build_layer("python3.12", "arm64", cache_dir=cache)
    assert second == first
    assert second.stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "temp dirs left behind"


@pytest.mark.slow
def test_host_layer_works_in_an_isolated_interpreter(cache: Path, tmp_path: Path) -> None:
    path = build_layer_for_host(cache_dir=cache)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "layer")
    site = tmp_path / "layer" / "python"
    # -I ignores PYTHONPATH and user site, -S skips site-packages (so the venv is invisible);
    # the script then puts only the layer on sys.path, as Lambda's /opt/python.
    script = textwrap.dedent(
        """
        import io, sys
        sys.path.insert(0, sys.argv[1])
        from PIL import Image
        assert Image.__file__.startswith(sys.argv[1]), Image.__file__
        assert not any("site-packages" in p for p in sys.path), sys.path
        image = Image.linear_gradient("L").convert("RGB").resize((1920, 1080))
        image = image.resize((200, 113), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=85)
        decoded = Image.open(io.BytesIO(out.getvalue()))
        print(decoded.format, decoded.size[0], decoded.size[1])
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(site)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["JPEG", "200", "113"]


# -- the function zip ----------------------------------------------------------------------


def test_function_zip_is_the_lambda_package(cache: Path) -> None:
    path = build_function_zip(cache_dir=cache)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert "lambda_pkg/handler.py" in names
    assert "lambda_pkg/profiles.py" in names
    assert names == sorted(f"lambda_pkg/{p.name}" for p in (REPO / "lambda_pkg").glob("*.py"))
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_function_zip_is_deterministic_and_follows_the_source(tmp_path: Path) -> None:
    package = tmp_path / "lambda_pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"stale")
    (package / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (package / "__init__.py").write_text("")

    first = build_function_zip(cache_dir=tmp_path / "a", package_dir=package)
    touched = (package / "handler.py").stat().st_mtime_ns + 10**9
    os.utime(package / "handler.py", ns=(touched, touched))  # a touch is not a change
    again = build_function_zip(cache_dir=tmp_path / "b", package_dir=package)
    assert first.read_bytes() == again.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["lambda_pkg/__init__.py", "lambda_pkg/handler.py"]

    (package / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    changed = build_function_zip(cache_dir=tmp_path / "a", package_dir=package)
    assert changed != first
    assert changed.read_bytes() != first.read_bytes()
