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
    Interpreter,
    build_function_zip,
    build_layer,
    build_layer_for_host,
    bytecode_note,
    check_unzipped_size,
    find_interpreter,
    manylinux_platforms,
)
from tests.support import REPO

ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # EM_AARCH64, EM_X86_64
SO_TAG = {"arm64": "aarch64", "x86_64": "x86_64"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build")


def python312() -> Interpreter:
    found = find_interpreter("python3.12")
    if found is None:
        pytest.skip("no python3.12 here (PATH, pyenv, uv): the bytecode step cannot run")
    return found


def assert_bytecode_beside_sources(names: list[str], bytecode: Interpreter | None) -> None:
    """Each .py has its .pyc for `bytecode`'s version beside it, and there is no other .pyc
    (none at all without an interpreter)."""
    compiled = {n for n in names if n.endswith(".pyc")}
    expected = set()
    if bytecode is not None:
        for name in (n for n in names if n.endswith(".py")):
            folder, _, file = name.rpartition("/")
            expected.add(f"{folder}/__pycache__/{file[:-3]}.{bytecode.cache_tag}.pyc")
    assert compiled == expected
    assert all(n.endswith(".pyc") for n in names if "__pycache__" in n)


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
    assert_bytecode_beside_sources(names, layer.find_interpreter("python3.12"))
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


# -- bytecode ------------------------------------------------------------------------------


def fake_python(folder: Path, name: str, says: str | None) -> str:
    """An executable that answers the interpreter probe with `says` (None: it fails, as a
    pyenv shim for a version not selected does)."""
    path = folder / name
    body = f"echo '{says}'" if says is not None else "echo 'pyenv: not selected' >&2; exit 127"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_find_interpreter_takes_the_first_cpython_of_exactly_the_version(tmp_path: Path) -> None:
    # GIVEN a refusing shim, another minor, a free-threaded build, PyPy, then the right one
    candidates = [
        str(tmp_path / "missing"),
        fake_python(tmp_path, "shim", None),
        fake_python(tmp_path, "minor", "cpython 3.13 f30d0d0a 0"),
        fake_python(tmp_path, "threaded", "cpython 3.12 cb0d0d0a 1"),
        fake_python(tmp_path, "pypy", "pypy 3.12 cb0d0d0a 0"),
        fake_python(tmp_path, "good", "cpython 3.12 cb0d0d0a 0"),
        fake_python(tmp_path, "later", "cpython 3.12 cb0d0d0a 0"),
    ]
    # WHEN the build looks for python3.12 THEN only the good one serves
    found = find_interpreter("python3.12", candidates)
    assert found == Interpreter(str(tmp_path / "good"), "3.12", "cb0d0d0a")
    assert found.cache_tag == "cpython-312"
    assert find_interpreter("python3.12", candidates[:5]) is None


def test_candidates_are_path_then_pyenv_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    on_path = fake_python(bin_dir, "python3.12", "cpython 3.12 cb0d0d0a 0")
    for version in ("3.12.1", "3.12.10", "3.13.0"):
        folder = tmp_path / "pyenv" / "versions" / version / "bin"
        folder.mkdir(parents=True)
        fake_python(folder, f"python{version[:4]}", f"cpython {version[:4]} cb0d0d0a 0")
    monkeypatch.setenv("PATH", str(bin_dir))  # and no uv
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    versions = tmp_path / "pyenv" / "versions"
    assert layer._candidates("3.12") == [
        on_path,
        str(versions / "3.12.10" / "bin" / "python3.12"),
        str(versions / "3.12.1" / "bin" / "python3.12"),
    ]


def test_without_an_interpreter_the_build_says_so_and_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(layer, "find_interpreter", lambda runtime, candidates=None: None)
    note = bytecode_note("python3.13")
    assert note is not None and "\n" not in note
    assert "no python3.13 found" in note and "pyenv install 3.13" in note
    assert "uv python install 3.13" in note
    found = Interpreter("/usr/bin/python3.13", "3.13", "f30d0d0a")
    monkeypatch.setattr(layer, "find_interpreter", lambda runtime, candidates=None: found)
    assert bytecode_note("python3.13") is None


def small_package(folder: Path) -> Path:
    package = folder / "lambda_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("ANSWER = 1\n")
    return package


def test_function_zip_carries_unchecked_hash_bytecode_for_the_runtime(tmp_path: Path) -> None:
    # GIVEN a python3.12 on this machine and a two-module package
    bytecode = python312()
    package = small_package(tmp_path / "src")
    # WHEN the function zip is built for python3.12, twice
    first = build_function_zip(tmp_path / "a", package, runtime="python3.12")
    again = build_function_zip(tmp_path / "b", package, runtime="python3.12")
    # THEN each module's .pyc sits beside it, hash-based, and the zip is reproducible
    assert first.read_bytes() == again.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "task")
    assert_bytecode_beside_sources(names, bytecode)
    pyc = tmp_path / "task" / "lambda_pkg" / "__pycache__" / "handler.cpython-312.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01  # hash-based, unchecked
    # AND the 3.12 interpreter loads the bytecode, not the source (unchecked: an edited
    # source is not even read), with the file name Lambda will show in tracebacks
    (tmp_path / "task" / "lambda_pkg" / "handler.py").write_text("ANSWER = 2\n")
    code = (
        "import marshal, sys; sys.path.insert(0, sys.argv[1]); from lambda_pkg import handler; "
        "print(handler.ANSWER, marshal.loads(open(sys.argv[2], 'rb').read()[16:]).co_filename)"
    )
    done = subprocess.run(
        [bytecode.path, "-I", "-S", "-B", "-c", code, str(tmp_path / "task"), str(pyc)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["1", "/var/task/lambda_pkg/handler.py"]


def test_a_build_without_bytecode_is_not_reused_once_an_interpreter_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python312()
    package = small_package(tmp_path / "src")
    with_bytecode = build_function_zip(tmp_path, package, runtime="python3.12")
    monkeypatch.setattr(layer, "find_interpreter", lambda runtime, candidates=None: None)
    without = build_function_zip(tmp_path, package, runtime="python3.12")
    assert without != with_bytecode
    with zipfile.ZipFile(without) as archive:
        assert archive.namelist() == ["lambda_pkg/__init__.py", "lambda_pkg/handler.py"]
    monkeypatch.undo()
    assert build_function_zip(tmp_path, package, runtime="python3.12") == with_bytecode
