"""`imgpipe demo`: the local stack, sample images made on the spot, a results table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from lambda_pkg import records
from pipeline.cli import gallery, ops, report
from pipeline.cli.progress import ProgressBar
from pipeline.local.runner import LocalStack

DEMO_STACK = "demo"
INPUT_PREFIX = "input/"
FINAL = report.FINAL


def make_samples(directory: Path) -> list[dict[str, str]]:
    """The samples need Pillow, which pipeline/ never imports: a child process makes them."""
    done = subprocess.run(
        [sys.executable, "-m", "imgpipe_samples", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def run_demo(
    profile: str, out: Path, workers: int | None = None, state_folder: Path | None = None
) -> int:
    started = time.monotonic()
    stack = LocalStack(
        profile, stack=DEMO_STACK, workers=workers, write_state=False, state_folder=state_folder
    )
    with stack:
        target = stack.target()
        print(f"Local stack up at {stack.endpoint} ({stack.workers} workers, profile {profile}).")
        if target.cdn is not None:
            print(
                f"Local CDN (renditions over HTTP, in the format each browser takes): {target.cdn}"
            )
        samples = make_samples(out / "samples")
        pairs = [(out / "samples" / s["file"], INPUT_PREFIX + s["file"]) for s in samples]
        ops.upload(target, pairs, ProgressBar(len(pairs), "upload"))
        keys = [key for _, key in pairs]
        results = ops.wait_for(
            target,
            keys,
            done=lambda entry: entry.get("status") in FINAL,
            timeout_s=120,
            progress=ProgressBar(len(keys), "processed"),
        )
        letters = ops.dead_lettered(target)
        # The stack stops with the demo: its page keeps copies, fetched through the CDN.
        page = gallery.write(target, out / "gallery", copy_through_cdn=True)
        print()
        print(_table(samples, results, letters))
        expected = {INPUT_PREFIX + s["file"]: s["expect"] for s in samples}
        surprises = [
            key
            for key, entry in results.items()
            if (entry or {}).get("status") != expected[key] and key not in letters
        ]
        accounted = sum(
            1 for k in keys if (results[k] or {}).get("status") in FINAL or k in letters
        )
        statuses = Counter((entry or {}).get("status") for entry in results.values())
        print(
            f"\n{accounted} of {len(keys)} images accounted for "
            f"({statuses[records.STATUS_OK]} ok, {statuses[records.STATUS_FAILED]} failed, "
            f"{len(letters)} on the dead-letter queue) in {time.monotonic() - started:.1f} s."
        )
        print(f"Gallery (originals beside renditions): {page.resolve().as_uri()}")
        print(f"Renditions: {(out / 'gallery' / 'renditions' / 'processed').resolve()}")
        print(f"Function logs (as CloudWatch would have them): {stack.log_dir}")
        print("Shutting the local stack down.")
    if surprises or accounted != len(keys):
        print(f"Unexpected results for: {', '.join(surprises) or 'missing items'}", file=sys.stderr)
        return 1
    return 0


def _table(samples: list[dict[str, str]], results: dict, letters: dict) -> str:
    rows = []
    for sample in samples:
        key = INPUT_PREFIX + sample["file"]
        error = letters[key].error if key in letters else None
        rows.append(report.item_row(key, results.get(key), dead_letter_error=error))
    return report.table(rows)
