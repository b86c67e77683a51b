"""Bounded fuzzing of decode -> renditions -> encode: byte mutations of small real images.

Allowed outcomes are success and `imaging.ImageRejected`. Anything else (another exception
type, or an example running past the time limit) is a finding: the input is saved under
.build/fuzz-failures/ with the traceback beside it, and the run fails. A hard crash of the
interpreter is caught by whoever started it (tests/reliability/test_fuzz_decode.py runs this
in a child process): the input being tried is always on disk first, as `in-progress.bin`.

Deterministic: hypothesis runs in batches, each with a fixed seed and no example database,
so the short CI form tries the same inputs every time; the long form simply runs more
batches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import struct
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st
from PIL import Image

from imgpipe_samples import encode, exif_with_orientation, photo
from lambda_pkg import imaging
from lambda_pkg.profiles import Profile, profile_from_dict

FAILURES = Path(__file__).resolve().parent.parent / ".build" / "fuzz-failures"
BATCH = 250
EXAMPLE_LIMIT_S = 5.0  # a small input that takes longer than this is a hang


class Finding(Exception):
    def __init__(self, kind: str, data: bytes, profile: str, detail: str) -> None:
        super().__init__(f"{kind} on {len(data)} bytes ({profile}): {detail.splitlines()[-1]}")
        self.kind, self.data, self.profile, self.detail = kind, data, profile, detail


class _Hang(BaseException):  # BaseException: Pillow's `except Exception` must not swallow it
    pass


def _seeds() -> dict[str, bytes]:
    small = photo(48, 32)
    frames = [photo(24, 16).rotate(angle) for angle in (0, 90, 180)]
    gif = encode(frames[0].convert("P"), "GIF", save_all=True, append_images=frames[1:])
    grey16 = photo(24, 16).convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
    return {
        "jpeg": encode(small, "JPEG", quality=80),
        "jpeg-progressive-exif": encode(
            small, "JPEG", quality=80, progressive=True, exif=exif_with_orientation(6)
        ),
        "jpeg-cmyk": encode(small.convert("CMYK"), "JPEG"),
        "png": encode(small, "PNG"),
        "png-rgba": encode(small.convert("RGBA"), "PNG"),
        "png-16bit": encode(grey16, "PNG"),
        "png-palette": encode(small.convert("P"), "PNG"),
        "gif-animated": gif,
        "webp": encode(small, "WEBP", quality=70),
        "webp-lossless-alpha": encode(small.convert("RGBA"), "WEBP", lossless=True),
        "tiff": encode(small, "TIFF"),
        "tiff-lzw": encode(small, "TIFF", compression="tiff_lzw"),
        "bmp": encode(small, "BMP"),
    }


def _profiles() -> dict[str, Profile]:
    renditions = [
        {"name": "fit", "resize": {"mode": "fit", "width": 40, "height": 40}, "format": "same"},
        {"name": "sq", "resize": {"mode": "cover", "width": 16, "height": 16}, "format": "webp"},
        {"name": "j", "resize": {"mode": "width", "width": 20}, "format": "jpeg"},
    ]
    for rendition in renditions:
        rendition["key"] = "processed/{key}/{rendition}.{ext}"
    common = {
        "renditions": renditions,
        "input_formats": ["jpeg", "png", "gif", "webp", "tiff", "bmp"],
    }
    return {
        "still": profile_from_dict({"name": "fuzz", **common}, "fuzz"),
        "animated": profile_from_dict(
            {"name": "fuzz-anim", "keep_animation": True, "max_frames": 8, **common}, "fuzz"
        ),
    }


SEEDS = _seeds()
PROFILES = _profiles()
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str, bytes]:
    """(seed name, profile name, bytes): a real small image with up to 6 mutations."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(("flip", "byte", "insert", "delete", "truncate", "int", "dup")))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        elif op == "int":  # header fields: sizes, lengths, offsets
            value = draw(st.sampled_from(_INTERESTING))
            fmt = draw(st.sampled_from((">H", "<H", ">I", "<I")))
            packed = struct.pack(fmt, value & (0xFFFF if fmt[1] == "H" else 0xFFFFFFFF))
            data[at : at + len(packed)] = packed
        else:
            length = draw(st.integers(1, 256))
            data[at:at] = data[at : at + length]
    profile = draw(st.sampled_from(("still", "still", "animated")))
    return name, profile, bytes(data)


def classify(data: bytes, profile: str, limit_s: float = EXAMPLE_LIMIT_S) -> str:
    """'ok' or 'rejected'; raises Finding for anything else."""
    FAILURES.mkdir(parents=True, exist_ok=True)
    (FAILURES / "in-progress.bin").write_bytes(data)  # survives a hard crash
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": expected here
            imaging.process(data, PROFILES[profile])
        return "ok"
    except imaging.ImageRejected:
        return "rejected"
    except _Hang:
        raise Finding("hang", data, profile, f"over {limit_s:.0f} s") from None
    except Exception as exc:
        raise Finding(type(exc).__name__, data, profile, traceback.format_exc()) from exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _on_alarm(signum: int, frame: object) -> None:
    raise _Hang


def save(finding: Finding) -> Path:
    digest = hashlib.sha256(finding.data).hexdigest()[:16]
    path = FAILURES / f"{finding.kind}-{digest}.bin"
    path.write_bytes(finding.data)
    path.with_suffix(".txt").write_text(
        f"profile: {finding.profile}\nreplay: python -m reliability fuzz --replay {path}\n\n"
        f"{finding.detail}"
    )
    return path


@dataclass
class FuzzResult:
    examples: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_seed: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "seconds": round(self.seconds, 1),
            "outcomes": dict(self.outcomes),
            "seeds": len(self.by_seed),
            "findings": self.findings,
        }


def run(max_examples: int, max_seconds: float, base_seed: int = 20240601) -> FuzzResult:
    result = FuzzResult()
    began = time.monotonic()
    batch = 0
    while result.examples < max_examples and time.monotonic() - began < max_seconds:
        size = min(BATCH, max_examples - result.examples)

        @fixed_seed(base_seed + batch)
        @settings(
            max_examples=size,
            deadline=None,  # our own alarm decides what a hang is
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(mutated())
        def check(case: tuple[str, str, bytes]) -> None:
            name, profile, data = case
            result.by_seed[name] += 1
            result.outcomes[classify(data, profile)] += 1

        try:
            check()
        except Finding as finding:  # hypothesis re-raises the shrunk (smallest) input
            result.findings.append(f"{finding} -> {save(finding)}")
        except ExceptionGroup as group:  # several distinct bugs: one shrunk input each
            for finding in _leaves(group):
                result.findings.append(f"{finding} -> {save(finding)}")
        result.examples += size
        batch += 1
    result.seconds = time.monotonic() - began
    (FAILURES / "in-progress.bin").unlink(missing_ok=True)
    return result


def _leaves(group: BaseExceptionGroup) -> list[Finding]:
    found: list[Finding] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found += _leaves(exc)
        elif isinstance(exc, Finding):
            found.append(exc)
        else:
            raise exc
    return found


def replay(path: Path, profile: str) -> str:
    return classify(path.read_bytes(), profile)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability fuzz")
    parser.add_argument("--examples", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--replay", type=Path, help="run one saved input again")
    parser.add_argument("--profile", default="still", choices=sorted(PROFILES))
    args = parser.parse_args(argv)
    if args.replay:
        print(replay(args.replay, args.profile))
        return 0
    result = run(args.examples, args.seconds, args.seed)
    print(json.dumps(result.as_dict()))
    return 1 if result.findings else 0


if __name__ == "__main__":
    Image.init()
    sys.exit(main())
