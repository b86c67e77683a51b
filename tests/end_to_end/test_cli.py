"""The `imgpipe` command as a user runs it: processes, real output, real signals."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from lambda_pkg import records, wire
from lambda_pkg.events import s3_event, s3_records
from pipeline.cli import commands as cli
from pipeline.cli import listing, ops
from pipeline.cli.report import item_row, renditions_summary, table
from pipeline.cli.targets import Target, from_outputs, state_file
from pipeline.program.stack import StackSettings
from tests.support import REPO, images
from tests.support.cli import IMGPIPE, imgpipe
from tests.support.local_stack import new_stack, wait_final
from tests.support.polling import wait_until

AWS_CLI = Path(sys.executable).with_name("aws")


def test_demo_accounts_for_every_sample(tmp_path):
    done = imgpipe("demo", "--out", str(tmp_path / "demo"), timeout=180)
    assert done.returncode == 0, done.stderr
    assert "15 of 15 images accounted for (13 ok, 2 failed, 0 on the dead-letter queue)" in (
        done.stdout
    )
    header = next(line for line in done.stdout.splitlines() if line.startswith("key "))
    assert header.split() == ["key", "original", "renditions", "status", "error"]
    assert re.search(r"input/photo\.jpg\s+1920x1080\s+200x113\s+ok", done.stdout)
    assert re.search(r"input/broken\.jpg\s+-\s+-\s+failed\s+corrupt or truncated", done.stdout)
    assert (tmp_path / "demo" / "gallery" / "index.html").is_file()
    thumb = tmp_path / "demo" / "gallery" / "renditions" / "processed" / "thumb_photo.jpg"
    assert thumb.is_file()
    # AND the local CDN's URL is printed; the gallery's <picture>s were copied through it
    # (the stack stops with the demo, so the page keeps copies rather than CDN links)
    if shutil.which("node"):
        cdn = re.search(r"^Local CDN \(.*\): (http://127\.0\.0\.1:\d+)$", done.stdout, re.M)
        assert cdn, done.stdout
        page = (tmp_path / "demo" / "gallery" / "index.html").read_text()
        assert page.count("<picture>") >= 13 and 'src="renditions/processed/' in page
        assert f"renditions copied through the CDN at {cdn[1]}" in page


def test_local_prints_the_upload_line_serves_the_commands_and_stops_on_ctrl_c(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(images.jpeg(1920, 1080))
    server = subprocess.Popen(
        [*IMGPIPE, "local", "--workers", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A hung server must fail the test, not hang the suite.
    watchdog = threading.Timer(180, server.kill)
    watchdog.start()
    try:
        lines = []
        for line in server.stdout:
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        output = "".join(lines)
        endpoint = re.search(r"endpoint\s+(http://127\.0\.0\.1:\d+)", output).group(1)
        upload_line = re.search(r"aws --endpoint-url \S+ s3 cp photo\.jpg (s3://\S+)", output)
        assert upload_line, output
        assert state_file().is_file()
        # the local CDN's URL is printed and in the state file, for clients to find
        cdn = re.search(r"cdn: (http://127\.0\.0\.1:\d+)", output).group(1)
        assert Target.from_json(state_file().read_text()).cdn == cdn

        # WHEN a user runs the printed AWS CLI line
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        subprocess.run(
            [str(AWS_CLI), "--endpoint-url", endpoint, "s3", "cp", str(photo), upload_line[1]],
            check=True,
            env=env,
            capture_output=True,
        )
        # THEN ls (through the state file) and show (through --endpoint) see the result
        for _ in range(120):
            listing = imgpipe("ls")
            if " ok" in listing.stdout:
                break
            time.sleep(0.5)
        assert re.search(r"input/photo\.jpg\s+1920x1080\s+200x113\s+ok", listing.stdout)
        shown = imgpipe("show", "input/photo.jpg", "--endpoint", endpoint)
        assert '"processed_width": 200' in shown.stdout
        assert "processed/thumb_photo.jpg" in shown.stdout
        with urllib.request.urlopen(f"{cdn}/processed/thumb_photo.jpg", timeout=30) as thumb:
            assert thumb.headers["Content-Type"] == "image/jpeg"
        # AND imgpipe upload sends a folder recursively, with progress, under a prefix
        album = tmp_path / "album" / "2026"
        album.mkdir(parents=True)
        (album / "a.jpg").write_bytes(images.jpeg(640, 480))
        (album / "b.png").write_bytes(images.png(300, 200))
        uploaded = imgpipe("upload", str(tmp_path / "album"), "--prefix", "batch/")
        assert "Uploaded 2 file(s)" in uploaded.stdout
        assert "upload [" in uploaded.stderr and "2/2 batch/2026/b.png" in uploaded.stderr
        for _ in range(120):
            listing = imgpipe("ls").stdout
            if listing.count(" ok") >= 3:
                break
            time.sleep(0.5)
        assert re.search(r"batch/2026/a\.jpg\s+640x480\s+200x150\s+ok", listing)
        # AND reprocess finds every item current under the running profile
        replan = imgpipe("reprocess")
        assert "0 to reprocess, 3 already current" in replan.stdout
        gallery = imgpipe("gallery", "--out", str(tmp_path / "g"))
        assert gallery.returncode == 0 and (tmp_path / "g" / "index.html").is_file()
        # (its renditions are <picture>s on the stack's CDN, found through the state file)
        sheet = (tmp_path / "g" / "index.html").read_text()
        assert f'src="{cdn}/processed/thumb_photo.jpg"' in sheet
        assert not (tmp_path / "g" / "renditions").exists()
        assert "empty" in imgpipe("dlq", "ls").stdout
        assert "Redrove 0 event(s)." in imgpipe("dlq", "redrive").stdout
        # AND Ctrl-C shuts everything down cleanly
        server.send_signal(signal.SIGINT)
        rest, errors = server.communicate(timeout=60)
        assert server.returncode == 0, errors
        assert "Stopped." in rest
        assert not state_file().exists()
    finally:
        watchdog.cancel()
        if server.poll() is None:
            server.kill()


def test_unknown_profile_is_a_clear_error():
    done = imgpipe("local", "--profile", "nope", timeout=60)
    assert done.returncode == 2
    assert "profile: got 'nope'; allowed: one of thumbnail" in done.stderr


def test_commands_without_a_stack_say_what_to_do(monkeypatch, tmp_path):
    if state_file().exists():
        pytest.skip("a local stack is running on this machine")
    done = imgpipe("ls")
    assert done.returncode == 2
    assert "start one with `imgpipe local`" in done.stderr


def test_deployed_stack_outputs_name_the_resources():
    outputs = {
        "inputBucket": "imgpipe-prod-input-abc1234",
        "outputBucket": "imgpipe-prod-output-def5678",
        "metadataTable": "imgpipe-prod-metadata-0a1b2c3",
        "functionName": "imgpipe-prod-processor-9f8e7d6",
        "deadLetterQueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/imgpipe-prod-dlq-x",
        "cdnUrl": "https://d111111abcdef8.cloudfront.net",
    }
    target = from_outputs(outputs, "prod")
    assert target.cdn == "https://d111111abcdef8.cloudfront.net"  # with imgpipe:cdn
    assert not target.is_local
    assert target.names.input_bucket == "imgpipe-prod-input-abc1234"
    assert target.names.function == "imgpipe-prod-processor-9f8e7d6"
    assert target.dead_letter_queue_url.endswith("imgpipe-prod-dlq-x")


def test_report_table_rows():
    entry = {
        "status": "ok",
        "original_width": 1920,
        "original_height": 1080,
        "renditions": [
            {"width": 800, "height": 450},
            {"width": 800, "height": 450},
            {"width": 200, "height": 113},
        ],
    }
    assert renditions_summary(entry) == "800x450, 200x113"
    failed = {"status": "failed", "original_width": 0, "original_height": 0, "error": "bad"}
    text = table([item_row("a.jpg", entry), item_row("b.jpg", failed), item_row("c.jpg", None)])
    lines = text.splitlines()
    assert lines[1].split() == ["a.jpg", "1920x1080", "800x450,", "200x113", "ok"]
    assert lines[2].split() == ["b.jpg", "-", "-", "failed", "bad"]
    assert lines[3].split() == ["c.jpg", "-", "-", "missing"]


# -- ls, show and reprocess against a running local stack ---------------------------------


@pytest.fixture(scope="module")
def served():
    """A local stack (web profile) holding one image of each kind the commands tell apart:
    ok (kept.jpg), failed (broken.jpg), deleted (gone.jpg), dlq (doomed.jpg),
    and an owner record for one of kept.jpg's renditions."""
    stack = new_stack(profile="web", fault_environment={"IMGPIPE_FAULT_RAISE": "doomed.jpg"})
    with stack:
        target = stack.target()
        ops.upload_bytes(
            target,
            {
                "kept.jpg": images.jpeg(1600, 1200),
                "gone.jpg": images.jpeg(800, 600),
                "broken.jpg": images.jpeg(800, 600)[:1500],
                "doomed.jpg": images.jpeg(300, 200),
            },
        )
        kept = wait_final(target, ["kept.jpg", "gone.jpg", "broken.jpg"])["kept.jpg"]
        ops.aws(target, "s3").delete_object(Bucket=stack.names.input_bucket, Key="gone.jpg")
        ops.wait_for(target, ["gone.jpg"], lambda e: e["status"] == "deleted", 30)
        deadline = time.monotonic() + 30
        while "doomed.jpg" not in ops.dead_lettered(target) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stack.wait_until_idle(30)
        owner = {
            "image_name": records.owner_record_name(kept["renditions"][0]["key"]),
            "record_type": records.RECORD_TYPE_OWNER,
            "owner": "kept.jpg",
        }
        ops.aws(target, "dynamodb").put_item(
            TableName=stack.names.metadata_table,
            Item=wire.encode(owner),
        )
        yield stack


def run(monkeypatch, capsys, stack, *argv: str) -> tuple[int, str]:
    """One command in this process, against `stack` (its names are not the default ones)."""
    monkeypatch.setattr(cli, "_target", lambda args: stack.target())
    args = cli._parser().parse_args(argv)
    code = args.run(args)
    return code, capsys.readouterr().out


def test_ls_lists_dead_lettered_images_and_leaves_owner_records_out(served, monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, served, "ls")
    keys = [line.split()[0] for line in out.splitlines()[1:]]
    assert code == 0 and keys == sorted(keys)
    assert {"broken.jpg", "doomed.jpg", "gone.jpg", "kept.jpg"} <= set(keys)
    assert not [key for key in keys if key.startswith("owner#")]
    assert re.search(
        r"doomed\.jpg\s+-\s+-\s+dlq\s+RuntimeError: injected fault for 'doomed.jpg'", out
    )
    assert re.search(r"broken\.jpg\s+-\s+-\s+failed\s+", out)
    assert re.search(r"kept\.jpg\s+1600x1200\s+\S.*\s+ok$", out, re.MULTILINE)
    # AND ls only peeked: the failure record is still there for `dlq redrive`
    assert "doomed.jpg" in ops.dead_lettered(served.target())


def test_ls_json_status_and_prefix(served, monkeypatch, capsys):
    # WHEN ls --json runs THEN every image is one JSON line with the documented fields
    code, out = run(monkeypatch, capsys, served, "ls", "--json")
    rows = {row["key"]: row for row in map(json.loads, out.splitlines())}
    assert code == 0 and {"broken.jpg", "doomed.jpg", "gone.jpg", "kept.jpg"} <= rows.keys()
    assert all(tuple(row) == listing.JSON_FIELDS for row in rows.values())
    kept = ops.item(served.target(), "kept.jpg")
    assert rows["kept.jpg"] == {
        "key": "kept.jpg",
        "status": "ok",
        "profile": "web",
        "original_width": 1600,
        "original_height": 1200,
        "original_bytes": kept["original_size_bytes"],
        "renditions": len(kept["renditions"]),
        "rendition_bytes": sum(r["bytes"] for r in kept["renditions"]),
        "error": None,
        "updated": kept["timestamp"],
    }
    assert rows["doomed.jpg"]["status"] == "dlq" and rows["doomed.jpg"]["original_bytes"] > 0
    assert rows["gone.jpg"]["status"] == "deleted" and rows["gone.jpg"]["renditions"] == 0
    # AND --status and --prefix narrow the list
    _, out = run(monkeypatch, capsys, served, "ls", "--status", "dlq", "--status", "failed")
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["broken.jpg", "doomed.jpg"]
    _, out = run(monkeypatch, capsys, served, "ls", "--json", "--prefix", "ke")
    assert [json.loads(line)["key"] for line in out.splitlines()] == ["kept.jpg"]


def test_show_of_an_image_without_item_says_why(served, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_target", lambda args: served.target())

    def show(key: str) -> tuple[int, str]:
        args = cli._parser().parse_args(["show", key])
        return args.run(args), capsys.readouterr().err

    code, err = show("doomed.jpg")
    assert code == 1
    assert err.startswith("imgpipe: no metadata item for 'doomed.jpg': its event is on the ")
    assert "(RuntimeError: injected fault for 'doomed.jpg'); `imgpipe dlq redrive` sends" in err
    code, err = show("nothing.jpg")
    assert code == 1 and "'nothing.jpg': there is no such input object" in err


def test_show_of_a_deleted_image_says_its_renditions_were_removed(served, monkeypatch, capsys):
    code, out = run(monkeypatch, capsys, served, "show", "gone.jpg")
    entry = ops.item(served.target(), "gone.jpg")
    assert code == 0 and entry["status"] == "deleted"
    removed = entry["removed_renditions"]
    assert removed and entry["renditions"] == []
    when = entry["deleted_at"]
    assert f"The original was deleted; its {len(removed)} rendition(s) were removed at {when}:" in (
        out
    )
    assert "s3://" not in out
    for rendition in removed:
        assert f"\n  {rendition['key']}\n" in out


def test_show_of_a_tombstone_says_there_were_no_renditions(served, monkeypatch, capsys):
    # GIVEN a delete for a key never processed: the function stores a tombstone
    target = served.target()
    delete = s3_event(served.names.input_bucket, "never.jpg", 0, "00FF", "ObjectRemoved:Delete")
    ops.send_events(target, [delete], progress=lambda _key: None)
    ops.wait_for(target, ["never.jpg"], lambda e: e["status"] == "deleted", 30)
    code, out = run(monkeypatch, capsys, served, "show", "never.jpg")
    when = ops.item(target, "never.jpg")["deleted_at"]
    assert code == 0 and out.endswith(
        f"The original was deleted at {when}; it had no renditions.\n"
    )


def test_gallery_has_a_card_per_image_and_none_for_owner_records(
    served, monkeypatch, capsys, tmp_path
):
    code, _ = run(monkeypatch, capsys, served, "gallery", "--out", str(tmp_path))
    page = (tmp_path / "index.html").read_text()
    cards = re.findall(r"<section class='card [^']*' data-key='([^']*)'", page)
    assert code == 0 and {"broken.jpg", "gone.jpg", "kept.jpg"} <= set(cards)
    assert not [key for key in cards if key.startswith("owner#")]


def test_reprocess_rewrites_renditions_missing_from_the_output_bucket(served, monkeypatch, capsys):
    # GIVEN kept.jpg, current with the running profile, but one rendition gone from S3
    target = served.target()
    kept = ops.item(target, "kept.jpg")
    lost = kept["renditions"][-1]["key"]
    ops.aws(target, "s3").delete_object(Bucket=served.names.output_bucket, Key=lost)
    # THEN show marks it missing, and the others not
    _, shown = run(monkeypatch, capsys, served, "show", "kept.jpg")
    bucket = served.names.output_bucket
    assert f"s3://{bucket}/{lost}  (missing: `imgpipe reprocess` writes it again)" in shown
    assert shown.count("(missing") == 1
    # WHEN reprocess runs with no option: doomed.jpg (no item) and kept.jpg (missing)
    code, out = run(monkeypatch, capsys, served, "reprocess")
    assert code == 0
    assert (
        "2 to reprocess, 1 already current, 0 not routed to any profile; "
        "1 of them for missing renditions"
    ) in out
    # THEN the rendition is written again, and kept.jpg is current once more
    deadline = time.monotonic() + 60
    while not ops.rendition_exists(target, lost) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ops.rendition_exists(target, lost)
    assert served.wait_until_idle(30)
    plan = ops.plan_reprocess(target, ops.current_config(target), everything=False)
    assert [record.key for event in plan.events for record in s3_records(event)] == ["doomed.jpg"]
    assert (plan.current, plan.missing) == (2, 0)


def test_ls_lists_uploads_not_processed_yet_as_pending(monkeypatch, capsys):
    # GIVEN a stack that routes in/ only, with in/a.jpg processed
    routes = '[{"prefix": "in/", "profile": "thumbnail"}]'
    config = StackSettings.from_values({"profile": "thumbnail", "routes": routes}.get)
    stack = new_stack(profile=config.pipeline_config(), workers=1)
    with stack:
        target = stack.target()
        ops.upload_bytes(target, {"in/a.jpg": images.jpeg(64, 48)})
        first = wait_final(target, ["in/a.jpg"])["in/a.jpg"]
        # WHEN the workers stop, and in/a.jpg is uploaded again in a later second than its
        # item (S3 keeps whole seconds), in/b.jpg is new and other/c.jpg matches no route
        stack.pool.stop()
        stamp = dt.datetime.fromisoformat(first["timestamp"]).timestamp()
        time.sleep(max(0.0, int(stamp) + 1.05 - time.time()))
        uploads = {"in/a.jpg": images.jpeg(80, 60), "in/b.jpg": images.jpeg(32, 32)}
        ops.upload_bytes(target, {**uploads, "other/c.jpg": images.jpeg(8, 8)})
        # THEN ls lists both uploads as pending, with their sizes, and not the unrouted one
        code, out = run(monkeypatch, capsys, stack, "ls", "--json")
        rows = [json.loads(line) for line in out.splitlines()]
        assert code == 0
        assert [(r["key"], r["status"], r["original_bytes"], r["renditions"]) for r in rows] == [
            (key, "pending", len(data), 0) for key, data in uploads.items()
        ]
        _, out = run(monkeypatch, capsys, stack, "ls", "--status", "pending", "--prefix", "in/b")
        assert [line.split()[0] for line in out.splitlines()[1:]] == ["in/b.jpg"]
        # AND show says why in/b.jpg and other/c.jpg have no item
        for key, why in [("in/b.jpg", "not processed yet"), ("other/c.jpg", "no profile route")]:
            args = cli._parser().parse_args(["show", key])
            assert args.run(args) == 1 and why in capsys.readouterr().err
        # AND once the workers run again, both end ok
        stack.redeploy(stack.config)
        ops.wait_for(target, uploads, lambda e: e["timestamp"] > first["timestamp"], 60)
        _, out = run(monkeypatch, capsys, stack, "ls")
        assert re.search(r"in/a\.jpg\s+80x60\s+\S+\s+ok", out)
        assert re.search(r"in/b\.jpg\s+32x32\s+\S+\s+ok", out)


def test_local_redeploys_an_edited_profile_and_refuses_a_broken_edit(tmp_path, capsys):
    from lambda_pkg.profiles import PROFILES_DIR
    from pipeline.cli.commands import _serve

    # GIVEN `imgpipe local` serving a copy of the thumbnail profile
    profile = tmp_path / "thumbnail.yaml"
    profile.write_text((PROFILES_DIR / "thumbnail.yaml").read_text())
    deployed = []

    class Stack:
        def redeploy(self, config):
            deployed.append(config)

    stop = threading.Event()
    settings = StackSettings()
    server = threading.Thread(target=_serve, args=(Stack(), settings, tmp_path, stop))
    server.start()
    errors: list[str] = []

    def touched_until(done: Callable[[], bool]) -> Callable[[], bool]:
        """Touch the profile (newer each time) every 3 s until `done`: the watcher may take
        its first look at the file after the first touch, and checks once a second."""
        last_touch = 0.0

        def check() -> bool:
            nonlocal last_touch
            errors.append(capsys.readouterr().err)
            if done():
                return True
            if time.monotonic() - last_touch >= 3:
                last_touch = time.monotonic()
                os.utime(profile, (time.time() + 5, time.time() + 5))
            return False

        return check

    try:
        # WHEN the profile is edited, THEN the new one is deployed
        profile.write_text(profile.read_text().replace("quality: 85", "quality: 70"))
        wait_until(touched_until(lambda: bool(deployed)), 30, 0.05, "the edit deployed")
        assert [c.profiles[0].renditions[0].quality for c in deployed] == [70]
        # WHEN it is broken, THEN the error says why, and nothing more is deployed
        profile.write_text(profile.read_text().replace("quality: 70", "quality: 700"))
        refused = touched_until(lambda: "not deployed" in "".join(errors))
        wait_until(refused, 30, 0.05, "the broken edit refused")
        assert len(deployed) == 1
    finally:
        stop.set()
        server.join(5)
    assert "renditions[0].quality: got 700" in "".join(errors) + capsys.readouterr().err


def test_local_refuses_bad_routes_with_a_clear_error():
    done = imgpipe("local", "--routes", '[{"prefix": "a/", "profile": "nope"}]', timeout=60)
    assert done.returncode == 2
    assert "nope" in done.stderr
