"""Deployment artifacts: the Pillow layer (built by pip for the function's platform) and the
function zip. Both are deterministic and cached by content, so `pulumi up` with nothing
changed uploads nothing. Never imports Pillow: pip fetches it for another platform.
"""

from __future__ import annotations

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
_BUILD_VERSION = "1"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ArtifactError(RuntimeError):
    """A deployment artifact could not be built or would not fit in Lambda."""


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
    return _build_layer(f"{runtime}-{architecture}", target, Path(cache_dir), Path(requirements))


def build_layer_for_host(
    cache_dir: Path = DEFAULT_CACHE_DIR, requirements: Path = LAYER_REQUIREMENTS
) -> Path:
    """The layer for the interpreter running this code (the local stack runs the handler here)."""
    # No --platform: pip then picks wheels for sys.executable itself, exactly what will load them.
    label = f"host-{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    return _build_layer(label, [], Path(cache_dir), Path(requirements))


def build_function_zip(
    cache_dir: Path = DEFAULT_CACHE_DIR, package_dir: Path = FUNCTION_PACKAGE
) -> Path:
    """`lambda_pkg/*.py` as `lambda_pkg/<name>.py`, byte-identical for identical sources."""
    package_dir = Path(package_dir)
    entries = [(f"{package_dir.name}/{p.name}", p) for p in sorted(package_dir.glob("*.py"))]
    if not entries:
        raise ArtifactError(f"no Python files in {package_dir}")
    digest = _digest(_BUILD_VERSION, *(f"{name}\0{p.read_bytes().hex()}" for name, p in entries))
    dest = Path(cache_dir) / f"function-{digest[:16]}.zip"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".function-") as tmp:
        partial = Path(tmp) / dest.name
        _write_zip(entries, partial)
        os.replace(partial, dest)
    return dest


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


def _build_layer(label: str, target: list[str], cache_dir: Path, requirements: Path) -> Path:
    digest = _digest(_BUILD_VERSION, requirements.read_text(encoding="utf-8"), label, *target)
    dest = cache_dir / f"layer-{label}-{digest[:16]}.zip"
    if dest.is_file():
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the destination so os.replace is an atomic rename on one filesystem;
    # a concurrent or interrupted build never leaves a half-written zip under the final name.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".layer-") as tmp:
        root = Path(tmp) / "root"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--only-binary=:all:", *target,
            "--target", str(root / "python"), "-r", str(requirements),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ArtifactError(
                f"pip could not build the layer for {label} (exit {result.returncode}):\n"
                f"{' '.join(command)}\n{result.stderr.strip()[-2000:]}"
            )
        partial = Path(tmp) / dest.name
        _write_zip(_tree(root), partial)
        check_unzipped_size(partial)
        os.replace(partial, dest)
    return dest


def _tree(root: Path) -> list[tuple[str, Path]]:
    """Files under root as (zip name, path), without bytecode compiled for the wrong Python."""
    return [
        (path.relative_to(root).as_posix(), path)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
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
