"""`imgpipe events` on the local stack: the function's outcomes, from the emulator's bus
through the tail queue (moto's server delivers EventBridge -> SQS), as a person reads them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from lambda_pkg import wire
from pipeline.cli import commands as cli
from pipeline.cli import ops
from tests.support import REPO, images
from tests.support.local_stack import new_stack, wait_final
from tests.support.polling import wait_until

# The real command in its own process, pointed at a test stack (whose names are not the
# default local stack's), so Ctrl-C reaches it as it reaches a person's.
EVENTS_FOLLOW = """
import sys
from pipeline.cli import commands
from pipeline.cli.targets import Target
target = Target.from_json(sys.argv[1])
commands._target = lambda args: target
sys.exit(commands.main(["events", "--follow"]))
"""


def run(monkeypatch, capsys, stack, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(cli, "_target", lambda args: stack.target())
    args = cli._parser().parse_args(argv)
    code = args.run(args)
    return code, capsys.readouterr().out


def test_events_prints_each_outcome_once_and_follow_stops_cleanly_on_ctrl_c(monkeypatch, capsys):
    with new_stack(profile="thumbnail") as stack:
        target = stack.target()
        # GIVEN a photo processed, junk failed, and the photo's original deleted
        ops.upload_bytes(target, {"photo.jpg": images.jpeg(1920, 1080), "junk.png": b"not"})
        wait_final(target, ["photo.jpg", "junk.png"])
        ops.aws(target, "s3").delete_object(Bucket=stack.names.input_bucket, Key="photo.jpg")
        ops.wait_for(target, ["photo.jpg"], lambda e: e["status"] == "deleted", 30)
        junk = wire.plain(ops.item(target, "junk.png"))

        # WHEN `imgpipe events --json` runs: one raw event a line, the item as detail
        code, out = run(monkeypatch, capsys, stack, "events", "--json")
        assert code == 0
        events = [json.loads(line) for line in out.splitlines()]
        assert {e["source"] for e in events} == {"imgpipe"}
        by_type = {(e["detail-type"], e["detail"]["image_name"]): e for e in events}
        assert set(by_type) == {
            ("Image Processed", "photo.jpg"),
            ("Image Failed", "junk.png"),
            ("Image Deleted", "photo.jpg"),
        }
        assert by_type["Image Failed", "junk.png"]["detail"] == junk
        # AND each event is printed once: a second read finds none
        assert run(monkeypatch, capsys, stack, "events") == (0, "")

        # WHEN `imgpipe events --follow` waits and another image is processed
        follower = subprocess.Popen(
            [sys.executable, "-c", EVENTS_FOLLOW, target.to_json()],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(120, follower.kill)  # a hang fails, never blocks
        watchdog.start()
        try:
            ops.upload_bytes(target, {"later.jpg": images.jpeg(640, 480)})
            printed = wait_until(follower.stdout.readline, 60, what="a line from --follow")
            # THEN it prints one line: the type, the key and the rendition's size
            assert "Image Processed" in printed and "later.jpg" in printed, printed
            assert "1 rendition(s): 200x150" in printed
            # AND Ctrl-C ends it at once, with no traceback
            follower.send_signal(signal.SIGINT)
            _, errors = follower.communicate(timeout=30)
        finally:
            watchdog.cancel()
            follower.kill()
        assert follower.returncode == 0, errors
        assert "Traceback" not in errors


def test_events_against_a_deployed_stack_says_how_to_read_its_bus(monkeypatch, capsys):
    from pipeline.cli.targets import from_outputs

    deployed = from_outputs(
        {
            "inputBucket": "in",
            "outputBucket": "out",
            "metadataTable": "t",
            "functionName": "f",
        },
        "prod",
    )
    monkeypatch.setattr(cli, "_target", lambda args: deployed)
    assert cli.main(["events"]) == 2
    assert "put a rule on its bus" in capsys.readouterr().err
