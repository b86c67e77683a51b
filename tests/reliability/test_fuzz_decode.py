"""Fuzzing decode -> renditions -> encode (reliability/fuzz.py), short and deterministic.

The fuzzer runs in a child interpreter, so a hard crash (a segfault in a codec) or a hang
fails this test instead of killing the run; the input being tried is on disk first.
`python -m reliability fuzz --examples N --seconds S` is the long form.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reliability import fuzz
from tests.support import REPO

ROOT = REPO
# Found by this fuzzer: a TIFF whose second IFD has no dimensions (TypeError from n_frames).
TIFF_SECOND_IFD_WITHOUT_SIZE = bytes.fromhex(
    "49492a00080000000a0000010400010000003000000001010400010000002000000002010300030000"
    "008600000003010300010000000100000006010300010000000200000011010400010000008c000000"
    "1501030001000000030000001601040001000000200000001701040001000000001200001c01030001"
    "0000000100000001000000080008000800"
)


def test_a_short_deterministic_fuzz_run_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "reliability", "fuzz", "--examples", "2000", "--seconds", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"findings saved under {fuzz.FAILURES}:\n{done.stdout[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["examples"] >= 1000 and not result["findings"]
    assert set(result["outcomes"]) == {"ok", "rejected"}  # both paths exercised


@pytest.mark.parametrize("profile", sorted(fuzz.PROFILES))
def test_every_prefix_of_the_animated_gif_is_ok_or_rejected(profile):
    # Truncated animations once raised IndexError/struct.error while frames were counted.
    seed = fuzz.SEEDS["gif-animated"]
    outcomes = {fuzz.classify(seed[:end], profile) for end in range(0, len(seed), 3)}
    assert outcomes <= {"ok", "rejected"}


def test_a_tiff_whose_second_page_has_no_size_is_rejected():
    assert fuzz.classify(TIFF_SECOND_IFD_WITHOUT_SIZE, "still") == "rejected"


def test_a_finding_is_saved_with_its_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz, "FAILURES", tmp_path)
    monkeypatch.setattr(fuzz.imaging, "process", lambda data, profile: 1 / 0)
    with pytest.raises(fuzz.Finding) as raised:
        fuzz.classify(b"GIF89a", "still")
    saved = fuzz.save(raised.value)
    assert saved.read_bytes() == b"GIF89a"
    assert "ZeroDivisionError" in saved.with_suffix(".txt").read_text()
