"""A pyvips peer on the system's libvips (Debian's libvips42), in a child process.

pyvips-binary's libvips has no HEVC decoder, so it cannot make a HEIC thumbnail. Debian's
libvips links libheif with libde265 and can. One process can load only one libvips, so
this one runs as a child worker: the parent sends an image, the child makes the same
`thumbnail` as the `vips` peer and answers with the milliseconds that took (timed here, so
the pipe's copy of the input is not counted).

Protocol on stdin/stdout: the parent writes an 8-byte big-endian length and the bytes; the
child answers one line, `<ms>` or `error <message>`. The first line the child writes is
`ready <libvips version>`.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def serve() -> None:
    sys.modules["_libvips"] = None  # type: ignore[assignment]  # no API mode: ABI on the system lib
    import pyvips

    out = sys.stdout
    version = ".".join(str(pyvips.version(i)) for i in range(3))
    out.write(f"ready {version}\n")
    out.flush()
    source = sys.stdin.buffer
    while header := _read_exactly(source, 8):
        (length,) = struct.unpack(">Q", header)
        data = _read_exactly(source, length)
        start = time.perf_counter()
        try:
            image = pyvips.Image.thumbnail_buffer(data, 200)
            image.jpegsave_buffer(Q=85, optimize_coding=True)
        except pyvips.Error as exc:
            message = " ".join(str(exc).split())
            out.write(f"error {message} (got {len(data)} of {length} bytes: {data[:12]!r}...)\n")
        else:
            out.write(f"{(time.perf_counter() - start) * 1000!r}\n")
        out.flush()


def _read_exactly(source, length: int) -> bytes:
    chunks, missing = [], length
    while missing:
        chunk = source.read(missing)
        if not chunk:
            break
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class SystemVips:
    """The parent's side: a callable like the other approaches that returns the child's ms."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.system_vips"],
            cwd=Path(__file__).resolve().parent.parent,
            # pyvips-binary's libvips sets VIPSHOME in the C environment when it loads, which
            # a child inherits; the system libvips would then look for its modules (HEIF is
            # one) under that path and find none.
            env={k: v for k, v in os.environ.items() if k != "VIPSHOME"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,  # a file, not a pipe nobody drains while the child runs
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().decode().strip()
        if not first.startswith("ready "):
            self.process.kill()
            self.process.wait()
            self.log.seek(0)
            error = self.log.read().decode(errors="replace")
            last = error.strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"system libvips unavailable: {last[0]}")
        self.version = first.split()[1]

    def __call__(self, data: bytes) -> ChildMilliseconds:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(struct.pack(">Q", len(data)) + data)
        self.process.stdin.flush()
        answer = self.process.stdout.readline().decode().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(answer or "the system libvips worker exited")
        return ChildMilliseconds(answer)


class ChildMilliseconds(float):
    """A duration measured by a child process; the timer uses it instead of its own."""


if __name__ == "__main__":
    serve()
