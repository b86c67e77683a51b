"""Deployment artifacts: the Pillow layer (built by pip for the function's platform) and the
function zip. Both are deterministic and cached by content, so `pulumi up` with nothing
changed uploads nothing. Never imports Pillow: pip fetches it for another platform.

Both carry bytecode compiled by an interpreter of the runtime's own version when this
machine has one (`find_interpreter`): Lambda's /var/task and /opt are read-only, so a
module without a usable .pyc is compiled again, in memory, at every cold start.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / ".build"
LAYER_REQUIREMENTS = REPO_ROOT / "requirements" / "layer.txt"
FUNCTION_PACKAGE = REPO_ROOT / "lambda_pkg"

# Lambda's limit on function + layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# What Lambda accepts zipped in one PublishLayerVersion / CreateFunction request (the
# provider uploads FileArchive code directly, not through S3).
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
# A wheel's WHEEL file is a few lines; never read more of one than this.
_WHEEL_READ_LIMIT = 64 * 1024
_SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")
# glibc 2.x minor of each runtime's OS: python3.12/3.13 run on Amazon Linux 2023 (glibc 2.34).
RUNTIME_GLIBC_MINOR = {"python3.12": 34, "python3.13": 34}
MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
# ELF e_machine of each architecture's shared objects.
ELF_MACHINES = {"arm64": 183, "x86_64": 62}  # EM_AARCH64, EM_X86_64
# Bump when the zip layout or pip flags change, so old cached zips are not reused.
_BUILD_VERSION = "2"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Hash-based, not timestamp-based: a timestamp .pyc records its source's mtime, and the zip
# stores every entry at _ZIP_EPOCH while Lambda promises nothing about the mtimes it
# extracts, so a mismatch would make Python recompile in memory at every cold start, with
# no way to write the result back. Unchecked: the source and its .pyc only ever change
# together (one content-addressed, read-only artifact), so hashing every source at import
# would buy nothing. A hash-based .pyc also records no time: same sources, same zip bytes.
PYC_INVALIDATION = "unchecked-hash"
# Where Lambda puts each artifact: the file names recorded in the bytecode.
_FUNCTION_ROOT = "/var/task"
_LAYER_ROOT = "/opt"
# What a candidate interpreter reports: implementation, version, bytecode magic, GIL.
_PROBE = (
    "import sys, sysconfig, importlib.util as u; print(sys.implementation.name, "
    "'%d.%d' % sys.version_info[:2], u.MAGIC_NUMBER.hex(), "
    "int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))"
)


class ArtifactError(RuntimeError):
    """A deployment artifact could not be built or would not fit in Lambda."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython that writes bytecode the function's runtime loads."""

    path: str
    version: str  # "3.12"
    magic: str  # importlib.util.MAGIC_NUMBER as hex: which interpreters accept its .pyc

    @property
    def cache_tag(self) -> str:
        return f"cpython-{self.version.replace('.', '')}"


def find_interpreter(runtime: str, candidates: Iterable[str] | None = None) -> Interpreter | None:
    """A CPython of exactly the runtime's version (`python3.12`), or None.

    Looks on PATH (`python3.12`), then in pyenv's versions (`$PYENV_ROOT`, else
    ~/.pyenv), then asks uv; each candidate is run once to say what it is, so a pyenv shim
    that refuses, another minor version or a free-threaded build is passed over.
    """
    version = runtime.removeprefix("python")
    for path in _candidates(version) if candidates is None else candidates:
        found = _probe(path, version)
        if found is not None:
            return found
    return None


def bytecode_note(runtime: str) -> str | None:
    """One line for a build without bytecode (no interpreter of the runtime's version), or
    None when the artifacts get bytecode."""
    if find_interpreter(runtime) is not None:
        return None
    version = runtime.removeprefix("python")
    return (
        f"no python{version} found (PATH, pyenv, uv): the function zip and layer ship "
        f"without .pyc, so every cold start compiles them (about twice the import time); "
        f"install one with `pyenv install {version}` or `uv python install {version}`"
    )


def _candidates(version: str) -> list[str]:
    found = [path for path in [shutil.which(f"python{version}")] if path]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    builds = pyenv.glob(f"{version}.*/bin/python{version}")
    found += sorted(map(str, builds), key=_patch_level, reverse=True)  # newest first
    uv = shutil.which("uv")
    if uv:
        asked = _run([uv, "python", "find", version])
        found += [asked.stdout.strip()] if asked and asked.returncode == 0 else []
    return found


def _patch_level(path: str) -> tuple[int, ...]:
    # .../versions/3.12.10/bin/python3.12 -> (3, 12, 10); a non-number part sorts first
    parts = Path(path).parents[1].name.split(".")
    return tuple(int(part) if part.isdigit() else -1 for part in parts)


@functools.cache
def _probe(path: str, version: str) -> Interpreter | None:
    done = _run([path, "-I", "-S", "-c", _PROBE])
    if done is None or done.returncode != 0:
        return None
    fields = done.stdout.split()
    if fields[:2] != ["cpython", version] or len(fields) != 4 or fields[3] != "0":
        return None
    return Interpreter(path, version, fields[2])


def _run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def manylinux_platforms(architecture: str, glibc_minor: int) -> list[str]:
    """Every manylinux tag a system with glibc 2.<glibc_minor> can load, newest first.

    pip (25.x) does not expand `--platform manylinux_2_34_x` to older glibc tags (it only
    expands manylinux2014/2010), and Pillow 13 publishes manylinux_2_27/2_28 wheels, so a
    single tag would find nothing: list them all.
    """
    if architecture not in MACHINES:
        raise ArtifactError(f"architecture {architecture!r}: allowed {', '.join(MACHINES)}")
    machine = MACHINES[architecture]
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 4, -1)]
    return [*tags, f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]


def build_layer(
    runtime: str,
    architecture: str,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    requirements: Path = LAYER_REQUIREMENTS,
) -> Path:
    """The layer zip (`python/...` at its root) for a Lambda runtime and architecture."""
    if runtime not in RUNTIME_GLIBC_MINOR:
        raise ArtifactError(f"runtime {runtime!r}: allowed {', '.join(RUNTIME_GLIBC_MINOR)}")
    target = [
        f"--platform={tag}"
        for tag in manylinux_platforms(architecture, RUNTIME_GLIBC_MINOR[runtime])
    ]
    target += ["--implementation=cp", f"--python-version={runtime.removeprefix('python')}"]
    label = f"{runtime}-{architecture}"
    bytecode = find_interpreter(runtime)
    return _build_layer(_LayerSpec(label, tuple(target), Path(requirements), bytecode), cache_dir)


def build_layer_for_host(
    cache_dir: Path = DEFAULT_CACHE_DIR, requirements: Path = LAYER_REQUIREMENTS
) -> Path:
    """The layer for the interpreter running this code (the local stack runs the handler here)."""
    return _build_layer(_host_layer(requirements), cache_dir)


def host_layer_path(
    cache_dir: Path = DEFAULT_CACHE_DIR, requirements: Path = LAYER_REQUIREMENTS
) -> Path:
    """Where `build_layer_for_host` keeps its zip: present means no build (and no pip)."""
    return _host_layer(requirements).path(cache_dir)


def _host_layer(requirements: Path) -> _LayerSpec:
    # No --platform: pip then picks wheels for sys.executable itself, exactly what will load them.
    label = f"host-{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    # No bytecode: the local sandbox unpacks it somewhere writable, and Python writes its own.
    return _LayerSpec(label, (), Path(requirements), None)


def build_function_zip(
    cache_dir: Path = DEFAULT_CACHE_DIR,
    package_dir: Path = FUNCTION_PACKAGE,
    runtime: str | None = None,
) -> Path:
    """`lambda_pkg/*.py` as `lambda_pkg/<name>.py`, byte-identical for identical sources;
    with `runtime`, and an interpreter of its version here, their bytecode beside them."""
    package_dir = Path(package_dir)
    sources = sorted(package_dir.glob("*.py"))
    bytecode = find_interpreter(runtime) if runtime else None
    dest = function_zip_path(cache_dir, package_dir, runtime)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".function-") as tmp:
        root = Path(tmp) / "root"
        (root / package_dir.name).mkdir(parents=True)
        for source in sources:
            shutil.copyfile(source, root / package_dir.name / source.name)
        if bytecode:
            _compile(root, bytecode, _FUNCTION_ROOT)
        partial = Path(tmp) / dest.name
        _write_zip(_tree(root, bytecode), partial)
        os.replace(partial, dest)
    return dest


def function_zip_path(
    cache_dir: Path = DEFAULT_CACHE_DIR,
    package_dir: Path = FUNCTION_PACKAGE,
    runtime: str | None = None,
) -> Path:
    """Where `build_function_zip` keeps the zip of these sources: present means no build."""
    package_dir = Path(package_dir)
    sources = sorted(package_dir.glob("*.py"))
    if not sources:
        raise ArtifactError(f"no Python files in {package_dir}")
    bytecode = find_interpreter(runtime) if runtime else None
    digest = _digest(
        _BUILD_VERSION,
        _bytecode_label(bytecode),
        *(f"{package_dir.name}/{p.name}\0{p.read_bytes().hex()}" for p in sources),
    )
    return Path(cache_dir) / f"function-{digest[:16]}.zip"


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


def over_direct_upload(zip_path: Path) -> str | None:
    """Why Lambda would refuse the zip in one upload request, or None."""
    zipped = Path(zip_path).stat().st_size
    if zipped <= LAMBDA_DIRECT_UPLOAD_LIMIT:
        return None
    return (
        f"is {zipped / 2**20:.1f} MiB, over the {LAMBDA_DIRECT_UPLOAD_LIMIT / 2**20:.0f} MiB "
        "Lambda accepts in a direct upload"
    )


def check_unzipped_size(zip_path: Path, limit: int = LAMBDA_UNZIPPED_LIMIT) -> int:
    """Raise if the zip would not fit in Lambda once unzipped; return its unzipped size."""
    size = unzipped_size(zip_path)
    if size > limit:
        raise ArtifactError(
            f"{zip_path.name} unzips to {size / 2**20:.1f} MiB, over Lambda's "
            f"{limit / 2**20:.0f} MiB limit for function + layers; trim requirements/layer.txt"
        )
    return size


def check_prebuilt_layer(
    zip_path: Path, runtime: str, architecture: str, requirements: Path = LAYER_REQUIREMENTS
) -> int:
    """Refuse a layer zip Lambda could not load into this stack's function.

    Checks what the zip itself says, against what the function imports and where Lambda
    runs it: every package pinned in requirements/layer.txt, at that version, on the
    runtime's path (`python/` or `python/lib/python3.X/site-packages/`); every wheel's
    tags (`*.dist-info/WHEEL`); every shared object's name, format and ELF machine; and
    Lambda's size limits. Returns the unzipped size.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise ArtifactError(
            f"imgpipe:layerZip: {zip_path} is not a file; build one with "
            f"`imgpipe build-layer --arch {architecture} --python "
            f"{runtime.removeprefix('python')} --output {zip_path}`"
        )
    too_big = over_direct_upload(zip_path)
    if too_big:
        raise ArtifactError(f"imgpipe:layerZip: {zip_path} {too_big}")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            wheels = {
                info.filename: archive.open(info).read(_WHEEL_READ_LIMIT).decode("utf-8", "replace")
                for info in infos
                if info.filename.endswith(".dist-info/WHEEL")
            }
            objects = {
                info.filename: archive.open(info).read(20)
                for info in infos
                if _SHARED_OBJECT.search(info.filename)
            }
    except zipfile.BadZipFile:
        raise ArtifactError(f"imgpipe:layerZip: {zip_path} is not a zip file") from None
    problems = _layer_problems(
        [i.filename for i in infos], wheels, objects, runtime, architecture, _pins(requirements)
    )
    if problems:
        raise ArtifactError(
            f"imgpipe:layerZip: {zip_path} cannot serve a {runtime} {architecture} function: "
            + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            + f"; build one with `imgpipe build-layer --arch {architecture} --python "
            f"{runtime.removeprefix('python')}`"
        )
    return check_unzipped_size(zip_path)


def _pins(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, by normalised distribution name."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if version:
            pins[_normalised(name)] = version.strip()
    return pins


def _normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _layer_problems(
    names: list[str],
    wheels: dict[str, str],
    objects: dict[str, bytes],
    runtime: str,
    architecture: str,
    pins: dict[str, str],
) -> list[str]:
    if runtime not in RUNTIME_GLIBC_MINOR:
        return [f"runtime {runtime!r} is not one of {', '.join(RUNTIME_GLIBC_MINOR)}"]
    if architecture not in MACHINES:
        return [f"architecture {architecture!r} is not one of {', '.join(MACHINES)}"]
    version = runtime.removeprefix("python").replace(".", "")  # "312"
    # The two directories of a layer that Lambda puts on this runtime's sys.path.
    roots = ("python/", f"python/lib/{runtime}/site-packages/")
    problems = []
    if not names:
        problems.append("it is empty")
    for name in names:
        if not name.startswith("python/"):
            problems.append(f"{name} is not under python/ (Lambda adds only python/ to the path)")
        elif name.startswith("python/lib/python") and not name.startswith(roots[1]):
            problems.append(f"{name} is not on {runtime}'s path ({roots[1]})")
    installed = {}
    for name in names:
        match = re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", _relative(name, roots))
        if match:
            installed[_normalised(match[1])] = match[2]
    for distribution, pinned in pins.items():
        found = installed.get(distribution)
        if found is None:
            problems.append(f"it has no {distribution} (requirements/layer.txt pins {pinned})")
        elif found != pinned:
            problems.append(f"it has {distribution} {found}; requirements/layer.txt pins {pinned}")
    for name, text in wheels.items():
        tags = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")
        ]
        if tags and not any(_tag_fits(tag, runtime, architecture) for tag in tags):
            problems.append(f"{name.rsplit('/', 2)[-2]} is built for {', '.join(tags)}")
    machine = MACHINES[architecture]
    for name, head in objects.items():
        tagged = re.search(r"\.cpython-(\d+)(t?)-([a-z0-9_]+)-linux-gnu\.so$", name)
        if tagged and (tagged[1] != version or tagged[2] or tagged[3] != machine):
            build = f"{tagged[1]}{tagged[2]} {tagged[3]}"
            problems.append(f"{name} is a CPython {build} module, not {version} {machine}")
        elif head[:4] != b"\x7fELF" or len(head) < 20:
            problems.append(f"{name} is not a Linux shared object (no ELF header)")
        else:
            found = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
            if head[4] != 2 or found != ELF_MACHINES[architecture]:
                problems.append(f"{name} is compiled for ELF machine {found}, not {architecture}")
    return problems


def _relative(name: str, roots: tuple[str, ...]) -> str:
    """`name` inside the deepest of `roots` it is under, or itself."""
    for root in sorted(roots, key=len, reverse=True):
        if name.startswith(root):
            return name[len(root) :]
    return name


def _tag_fits(tag: str, runtime: str, architecture: str) -> bool:
    """One wheel tag (`cp312-cp312-manylinux_2_28_aarch64`, parts may be dotted) on Lambda."""
    parts = tag.split("-")
    if len(parts) != 3:
        return False  # not a wheel tag: it cannot be shown to fit
    pythons, abis, platforms = (part.split(".") for part in parts)
    version = runtime.removeprefix("python").replace(".", "")  # "312"
    minor = int(version[1:])

    def python_fits(python: str, abi: str) -> bool:
        if abi not in ("none", "abi3", f"cp{version}"):
            return False  # e.g. cp313t: the free-threaded build, which Lambda does not run
        if python in ("py3", f"py{version}", f"cp{version}"):
            return True
        # The stable ABI: built against an older CPython 3, loadable by every later one.
        older = re.fullmatch(r"cp3(\d+)", python)
        return abi == "abi3" and older is not None and int(older[1]) <= minor

    def platform_fits(platform: str) -> bool:
        if platform == "any":
            return True
        if not platform.endswith(f"_{MACHINES[architecture]}"):
            return False
        glibc = re.fullmatch(r"manylinux_2_(\d+)_.+", platform)
        if glibc:
            return int(glibc[1]) <= RUNTIME_GLIBC_MINOR[runtime]
        return platform.startswith(("manylinux1_", "manylinux2010_", "manylinux2014_"))

    return any(python_fits(p, a) for p in pythons for a in abis) and any(
        platform_fits(p) for p in platforms
    )


@dataclass(frozen=True)
class _LayerSpec:
    """What a layer is built from; its zip's name in the cache is a digest of all of it."""

    label: str
    target: tuple[str, ...]  # pip's --platform/--implementation/--python-version options
    requirements: Path
    bytecode: Interpreter | None

    def path(self, cache_dir: Path) -> Path:
        # The bytecode is part of the key: a layer built while no interpreter was found is
        # rebuilt, with bytecode, once one is.
        digest = _digest(
            _BUILD_VERSION,
            self.requirements.read_text(encoding="utf-8"),
            self.label,
            _bytecode_label(self.bytecode),
            *self.target,
        )
        return Path(cache_dir) / f"layer-{self.label}-{digest[:16]}.zip"


def _build_layer(spec: _LayerSpec, cache_dir: Path) -> Path:
    cache_dir = Path(cache_dir)
    dest = spec.path(cache_dir)
    if dest.is_file():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the destination so os.replace is an atomic rename on one filesystem;
    # a concurrent or interrupted build never leaves a half-written zip under the final name.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".layer-") as tmp:
        root = Path(tmp) / "root"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--only-binary=:all:", *spec.target,
            "--target", str(root / "python"), "-r", str(spec.requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ArtifactError(
                f"pip could not build the layer for {spec.label} (exit {result.returncode}):\n"
                f"{' '.join(command)}\n{result.stderr.strip()[-2000:]}"
            )
        if spec.bytecode:
            _compile(root, spec.bytecode, _LAYER_ROOT)
        partial = Path(tmp) / dest.name
        _write_zip(_tree(root, spec.bytecode), partial)
        check_unzipped_size(partial)
        os.replace(partial, dest)
    return dest


def _bytecode_label(bytecode: Interpreter | None) -> str:
    if bytecode is None:
        return "no-bytecode"
    return f"{bytecode.cache_tag}-{bytecode.magic}-{PYC_INVALIDATION}"


def _compile(root: Path, bytecode: Interpreter, deployed_at: str) -> None:
    """Every .py under root compiled beside it (`__pycache__/<name>.cpython-312.pyc`) by
    the runtime's own interpreter, naming each file where Lambda will put it."""
    command = [
        bytecode.path, "-I", "-m", "compileall", "-q", "-j0",
        f"--invalidation-mode={PYC_INVALIDATION}", "-d", deployed_at, str(root),
    ]  # fmt: skip
    done = _run(command, timeout=600)
    if done is None or done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:] if done else "did not run"
        raise ArtifactError(f"compiling bytecode with {bytecode.path} failed:\n{output}")


def _tree(root: Path, bytecode: Interpreter | None) -> list[tuple[str, Path]]:
    """Files under root as (zip name, path): the bytecode `bytecode` compiled, and no other
    (a wheel's own .pyc would be for whichever Python built it)."""
    kept = f".{bytecode.cache_tag}.pyc" if bytecode else None

    def wanted(path: Path) -> bool:
        if path.suffix != ".pyc" and "__pycache__" not in path.parts:
            return True
        return kept is not None and path.name.endswith(kept) and path.parent.name == "__pycache__"

    return [
        (path.relative_to(root).as_posix(), path)
        for path in root.rglob("*")
        if path.is_file() and wanted(path)
    ]


def _write_zip(entries: Iterable[tuple[str, Path]], dest: Path) -> None:
    # Fixed timestamps, sorted names and normalised modes: same inputs, same bytes, same hash.
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def _digest(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()
