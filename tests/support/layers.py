"""Layer zips made by hand with the parts the prebuilt-layer checks read: wheel tags,
extension module names, ELF headers. Nothing here reaches PyPI."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

ELF = {"arm64": 183, "x86_64": 62}
MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
# What requirements/layer.txt pins, as dist-info directory names spell them.
PINNED = {
    "pillow": "13.0.0",
    "pillow_heif": "1.8.1",
    "pyspng_seunglab": "1.1.3",
    "numpy": "2.3.5",
}


def elf_header(architecture: str) -> bytes:
    """The first 20 bytes of a little-endian 64-bit ELF shared object for `architecture`."""
    return b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HH", 3, ELF[architecture])


def layer_zip(
    path: Path,
    architecture: str = "arm64",
    python: str = "312",
    tags: tuple[str, ...] | None = None,
    extra: dict[str, bytes] | None = None,
    root: str = "python/",
    versions: dict[str, str] | None = None,
) -> Path:
    """A layer with every pinned distribution (dist-info with METADATA and WHEEL) under
    `root`, and one compiled module, for `architecture` and CPython `python`."""
    machine = MACHINE[architecture]
    tags = tags or (f"cp{python}-cp{python}-manylinux_2_28_{machine}",)
    wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n" + "".join(f"Tag: {t}\n" for t in tags)
    with zipfile.ZipFile(path, "w") as archive:
        for name, version in (versions or PINNED).items():
            archive.writestr(f"{root}{name}-{version}.dist-info/METADATA", f"Name: {name}\n")
            archive.writestr(f"{root}{name}-{version}.dist-info/WHEEL", wheel)
        archive.writestr(f"{root}PIL/__init__.py", "")
        archive.writestr(
            f"{root}PIL/_imaging.cpython-{python}-{machine}-linux-gnu.so",
            elf_header(architecture) + b"\0" * 64,
        )
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path
