"""`imgpipe`: run the pipeline locally, and work with a local or deployed stack."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import EndpointConnectionError

from lambda_pkg import records
from lambda_pkg.profiles import PROFILES_DIR, ProfileError
from pipeline.aws import REGION
from pipeline.cli import gallery, listing, markup, ops, report
from pipeline.cli.progress import ProgressBar
from pipeline.cli.targets import STATE_DIR_VARIABLE, Target, TargetError, resolve
from pipeline.local.emulator import PortInUse
from pipeline.local.instance import AlreadyRunning, UnusableFolder
from pipeline.local.state import StateError
from pipeline.program.artifacts import (
    REPO_ROOT,
    ArtifactError,
    build_layer,
    bytecode_note,
    check_prebuilt_layer,
)
from pipeline.program.routing import RoutingError, describe
from pipeline.program.stack import ARCHITECTURES, RUNTIMES, StackSettings, StackSettingsError

logger = logging.getLogger("imgpipe.cli")
PYTHONS = tuple(runtime.removeprefix("python") for runtime in RUNTIMES)
PROFILE_HELP = (
    "processing profile: a YAML file's stem in profiles/, e.g. web (default: %(default)s)"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("imgpipe").setLevel(logging.WARNING)  # the handler's own lines: in logs
    logging.getLogger("imgpipe.local").setLevel(logging.INFO)
    try:
        return int(args.run(args) or 0)
    except (
        TargetError,
        ProfileError,
        StackSettingsError,
        RoutingError,
        ArtifactError,
        FileNotFoundError,
        AlreadyRunning,
        UnusableFolder,
        PortInUse,
        StateError,
    ) as exc:
        print(f"imgpipe: {exc}", file=sys.stderr)
        return 2
    except EndpointConnectionError as exc:  # the stack went away mid-command
        print(f"imgpipe: lost the stack: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imgpipe", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"imgpipe {version()}", help="print the version"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, help="what to do (`imgpipe COMMAND --help` for more)"
    )

    local = commands.add_parser("local", help="run the pipeline on an embedded AWS emulator")
    local.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    local.add_argument("--profile", default="thumbnail", help=PROFILE_HELP)
    local.add_argument(
        "--routes",
        help='profile routing as for imgpipe:routes, e.g. \'[{"prefix": "avatars/", '
        '"profile": "thumbnail"}, {"profile": "web"}]\'',
    )
    local.add_argument("--workers", type=int, default=None, help="default: number of cores")
    _add_state_dir(local)
    local.add_argument(
        "--fresh",
        action="store_true",
        help="start empty instead of restoring the saved buckets, table and queues "
        "(the saved state is moved aside, not deleted)",
    )
    local.set_defaults(run=_local)

    demo = commands.add_parser("demo", help="local stack + generated samples -> results table")
    demo.add_argument("--profile", default="thumbnail", help=PROFILE_HELP)
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        help="where the gallery and renditions go (default: %(default)s)",
    )
    demo.add_argument("--workers", type=int, default=None, help="default: number of cores")
    _add_state_dir(demo)
    demo.set_defaults(run=_demo)

    def targeted(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help, description=description or help)
        _add_target_options(command)
        return command

    upload = targeted("upload", "upload files or folders (recursively) to the input bucket")
    upload.add_argument("paths", nargs="+", type=Path, help="files, or folders to walk")
    upload.add_argument("--prefix", default="", help="key prefix, e.g. input/")
    upload.set_defaults(run=_upload)

    ls = targeted(
        "ls",
        "list every image: key, size, renditions, status",
        "List every image the stack has seen, with its status: ok, failed or deleted (its "
        "metadata item); dlq (the event's retries ran out, with the failure record's error); "
        "pending (uploaded, not processed yet: no item, or an item older than the upload). "
        "The dead-letter queue is only peeked at: `imgpipe dlq redrive` still finds every "
        "record.",
    )
    ls.add_argument(
        "--status",
        action="append",
        choices=listing.STATUSES,
        help="only images with this status; repeat it for several",
    )
    ls.add_argument("--prefix", default="", help="only keys that start with this, e.g. input/")
    ls.add_argument(
        "--json",
        action="store_true",
        help=f"one JSON object per image per line: {', '.join(listing.JSON_FIELDS)}",
    )
    ls.set_defaults(run=_ls)

    show = targeted(
        "show",
        "one image's metadata item and its rendition keys",
        "Print one image's metadata item and its renditions' S3 URIs; a rendition missing "
        "from the output bucket is marked, and a deleted original's renditions are listed "
        "as removed, with the time.",
    )
    show.add_argument("key", help="the input object's key, e.g. input/photo.jpg")
    show.set_defaults(run=_show)

    html = targeted(
        "html",
        "print a ready <picture> element for one image",
        "Print a <picture> element for one image: a <source> per format with every width in "
        "its srcset, and an <img> (the fallback format) with width, height, sizes, alt, lazy "
        "loading and the dominant colour as its placeholder background.",
    )
    html.add_argument("key", help="the input object's key, e.g. input/photo.jpg")
    html.add_argument(
        "--base-url",
        help="where the output bucket's keys are served, e.g. https://d123.cloudfront.net "
        "(default: the stack's CDN URL, when it has one)",
    )
    html.add_argument("--alt", default="", help="the image's alt text (default: empty)")
    html.add_argument(
        "--sizes",
        help='the sizes attribute (default: "(max-width: Wpx) 100vw, Wpx", W the widest)',
    )
    html.set_defaults(run=_html)

    reprocess = targeted(
        "reprocess",
        "re-run the current profile over existing inputs",
        "Re-run the current profile over the existing inputs whose item was made with an "
        "older profile (profile_hash), whose listed renditions are missing from the "
        "output bucket, that lost an output-key collision (the key may be free now), or "
        "that are marked deleted though the original is there; --all re-runs every input "
        "a profile route matches.",
    )
    reprocess.add_argument(
        "--all",
        action="store_true",
        help="every routed input, not only those with an older profile or missing renditions",
    )
    reprocess.add_argument(
        "--parallel", type=int, default=8, help="concurrent invocations (default: %(default)s)"
    )
    reprocess.set_defaults(run=_reprocess)

    gallery_command = targeted(
        "gallery",
        "write a static HTML contact sheet",
        "Write a static page of every image: a summary (counts per status, bytes saved), "
        "filters by status and profile, pages of cards with each original beside its "
        "renditions, failed images with their reason. With a CDN (the local stack's, or "
        "imgpipe:cdn's) renditions are <picture>s loaded from it, not copied.",
    )
    gallery_command.add_argument(
        "--out",
        type=Path,
        default=Path("out/gallery"),
        help="folder for index.html and the image copies (default: out/gallery)",
    )
    gallery_command.add_argument(
        "--presign",
        action="store_true",
        help="link presigned URLs (valid 1 h) instead of downloading local copies "
        "(with a CDN: of the originals)",
    )
    gallery_command.set_defaults(run=_gallery)

    events = targeted(
        "events",
        "print the outcomes the function published (Image Processed/Failed/Deleted)",
        "Print one line per event the function published on the local stack's bus, oldest "
        "first (each event once: reading takes it off the stack's tail queue).",
    )
    events.add_argument("--json", action="store_true", help="each event's raw JSON, one a line")
    events.add_argument("--follow", action="store_true", help="keep waiting; Ctrl-C stops")
    events.set_defaults(run=_events)

    build = commands.add_parser(
        "build-layer",
        help="build the Pillow layer zip for a stack to deploy without a package index",
        description="Build the Lambda layer (python/... at the zip root) that `pulumi up` "
        "would build, for the given architecture and Python, and write it to --output. "
        "Point a stack at it with `pulumi config set imgpipe:layerZip PATH`: deploys then "
        "need no package index.",
    )
    build.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="arm64",
        help="the function's architecture (default: %(default)s)",
    )
    build.add_argument(
        "--python",
        choices=PYTHONS,
        default="3.12",
        help="the Lambda runtime (default: %(default)s)",
    )
    build.add_argument(
        "--output",
        type=Path,
        help="a file or a directory (default: layers/pillow-python<version>-<arch>.zip)",
    )
    build.set_defaults(run=_build_layer)

    dlq = commands.add_parser("dlq", help="the dead-letter queue: what failed and why")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, help="what to do")
    dlq_ls = dlq_commands.add_parser("ls", help="list failure records")
    _add_target_options(dlq_ls)
    dlq_ls.set_defaults(run=_dlq_ls)
    dlq_redrive = dlq_commands.add_parser("redrive", help="re-invoke every failed event")
    _add_target_options(dlq_redrive)
    dlq_redrive.set_defaults(run=_dlq_redrive)
    return parser


def _build_layer(args: argparse.Namespace) -> int:
    runtime = f"python{args.python}"
    name = f"pillow-{runtime}-{args.arch}.zip"
    output = args.output or Path("layers") / name
    if output.is_dir():
        output = output / name
    note = bytecode_note(runtime)
    if note:
        print(f"note: {note}", file=sys.stderr)
    built = build_layer(runtime, args.arch)
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, output)
    size = check_prebuilt_layer(output, runtime, args.arch)
    print(f"{output}  ({output.stat().st_size / 2**20:.1f} MiB, {size / 2**20:.1f} MiB unzipped)")
    # Absolute: Pulumi resolves a relative layerZip against the project, not this directory.
    print(f"use it:  pulumi config set imgpipe:layerZip {output.resolve()}")
    return 0


def version() -> str:
    """imgpipe's version: the installed package's metadata (pyproject.toml's version), or
    pyproject.toml itself when run from a checkout that was never installed."""
    try:
        return metadata.version("imgpipe")
    except metadata.PackageNotFoundError:
        import tomllib

        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        return str(project["project"]["version"])


def _add_target_options(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="an emulator's URL (default: the running local stack)")
    where.add_argument("--stack", help="a deployed Pulumi stack (reads `pulumi stack output`)")
    _add_state_dir(command)


def _add_state_dir(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--state-dir",
        type=Path,
        help="the local stack's state and per-run log folders (default: .build/local of "
        f"this project, or ${STATE_DIR_VARIABLE}); one `imgpipe local` per folder",
    )


def next_steps(state_dir: Path | None) -> str:
    """The start-up's hint; a stack in a folder of its own is reached only by commands given
    that folder (without it they find the project's own stack, or none)."""
    line = "Then: imgpipe ls | imgpipe show input/photo.jpg | imgpipe gallery"
    return line if state_dir is None else f"{line}, each with --state-dir {state_dir}"


def _target(args: argparse.Namespace) -> Target:
    return resolve(endpoint=args.endpoint, stack=args.stack, folder=args.state_dir)


# -- local and demo -----------------------------------------------------------------------


def _local(args: argparse.Namespace) -> int:
    from pipeline.local.runner import LocalStack

    settings = StackSettings.from_values({"profile": args.profile, "routes": args.routes}.get)
    stack = LocalStack(
        settings.pipeline_config(),
        port=args.port,
        workers=args.workers,
        settings=settings,
        state_folder=args.state_dir,
        persist=True,
        fresh=args.fresh,
    )
    stack.claim()  # a second stack or a busy port: said now, not after the build
    _stop_on_sigterm()
    with stack:
        names = stack.names
        routes = ", ".join(describe(route) for route in stack.config.routes)
        print(f"\nimgpipe local stack is up: {routes}; {stack.workers} workers")
        print(f"  endpoint      {stack.endpoint}")
        if stack.cdn is not None:  # renditions over HTTP, formats negotiated as at the edge
            print(f"  cdn: {stack.cdn.url}")
        print(f"  input bucket  {names.input_bucket}")
        print(f"  output bucket {names.output_bucket}   table {names.metadata_table}")
        print(f"  event bus     {names.event_bus}   (imgpipe events --follow)")
        print(f"  worker logs   {stack.log_dir}")
        print("\nUpload with the AWS CLI (any credentials work on the emulator):")
        print(
            "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
            f"AWS_DEFAULT_REGION={REGION}"
        )
        print(
            f"  aws --endpoint-url {stack.endpoint} s3 cp photo.jpg "
            f"s3://{names.input_bucket}/input/photo.jpg"
        )
        print(next_steps(args.state_dir))
        try:  # from the line that says so, Ctrl-C is a clean stop
            print("Editing a profile's YAML redeploys it, like `pulumi up`. Ctrl-C stops.\n")
            _serve(stack, settings)
        except KeyboardInterrupt:
            say("\nShutting down...")
    say("Stopped.")
    return 0


def say(line: str) -> None:
    """Print a shutdown line whose reader may be gone: in `imgpipe local | tee log`, the
    Ctrl-C that stops the stack also ends tee, and a clean stop must not exit 1 for it."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _silence_terminal()


def _stop_on_sigterm() -> None:
    """SIGTERM (`kill`) and SIGHUP (the terminal closed) stop as Ctrl-C does: the workers
    stopped, the last snapshot written, the state file removed."""

    def interrupt(signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:  # the terminal is gone: a write to it would fail
            _silence_terminal()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def _silence_terminal() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _serve(
    stack: Any,
    settings: StackSettings,
    profiles_dir: Path = PROFILES_DIR,
    stop: threading.Event | None = None,
) -> None:
    """Run until interrupted; a changed profile file is redeployed if it is valid."""
    files = [profiles_dir / f"{name}.yaml" for name in settings.profile_names()]
    stop = stop or threading.Event()

    def mtimes() -> list[float]:
        return [path.stat().st_mtime if path.exists() else 0.0 for path in files]

    seen = mtimes()
    while not stop.wait(1):
        if mtimes() == seen:
            continue
        seen = mtimes()
        try:
            config = settings.pipeline_config(profiles_dir)
        except ProfileError as exc:
            print(f"Profile edit not deployed: {exc}", file=sys.stderr)
            continue
        stack.redeploy(config)
        hashes = ", ".join(f"{p.name} {p.content_hash()}" for p in config.profiles)
        print(f"Redeployed with the edited profiles ({hashes}).")
        print("Run `imgpipe reprocess` to bring existing images up to date.")


def _demo(args: argparse.Namespace) -> int:
    from pipeline.cli.demo import run_demo

    return run_demo(args.profile, args.out, args.workers, state_folder=args.state_dir)


# -- everyday commands --------------------------------------------------------------------


def _upload(args: argparse.Namespace) -> int:
    target = _target(args)
    pairs = ops.files_to_upload(args.paths, args.prefix)
    ops.upload(target, pairs, ProgressBar(len(pairs), "upload"))
    print(f"Uploaded {len(pairs)} file(s) to s3://{target.names.input_bucket}/")
    return 0


def _ls(args: argparse.Namespace) -> int:
    shown = listing.select(listing.gather(_target(args), args.prefix), args.status)
    if args.json:
        for entry in shown:
            print(entry.to_json())
    else:
        print(report.table([entry.row() for entry in shown]))
    return 0


def _show(args: argparse.Namespace) -> int:
    target = _target(args)
    entry = ops.item(target, args.key)
    if entry is None:
        why = listing.without_item(target, args.key)
        print(f"imgpipe: no metadata item for {args.key!r}: {why}", file=sys.stderr)
        return 1
    print(json.dumps(entry, indent=2, sort_keys=True))
    if entry.get("status") == records.STATUS_DELETED:
        _show_removed(entry)
        return 0
    for key in (rendition["key"] for rendition in entry.get("renditions", [])):
        exists = ops.rendition_exists(target, key)
        note = "  (missing: `imgpipe reprocess` writes it again)" if exists is False else ""
        print(f"s3://{target.names.output_bucket}/{key}{note}")
    return 0


def _html(args: argparse.Namespace) -> int:
    target = _target(args)
    base_url = args.base_url or getattr(target, "cdn", None)
    if not base_url:
        print(
            "imgpipe: this stack has no CDN URL; pass --base-url with the URL its output "
            "bucket's keys are served from",
            file=sys.stderr,
        )
        return 2
    entry = ops.item(target, args.key)
    if entry is None:
        print(f"imgpipe: no metadata item for {args.key!r}", file=sys.stderr)
        return 1
    try:
        print(markup.picture(entry, base_url, alt=args.alt, sizes=args.sizes))
    except markup.MarkupError as exc:
        print(f"imgpipe: {exc}", file=sys.stderr)
        return 1
    return 0


def _show_removed(entry: dict[str, Any]) -> None:
    """A deleted item's list is what the deletion removed: keys, not objects to fetch.
    Items deleted by an older function kept it in `renditions`; a tombstone (the delete
    came before the image was processed) has none."""
    removed = entry.get("removed_renditions") or entry.get("renditions") or []
    stamp = entry.get("deleted_at") or entry.get("timestamp")
    when = f"at {stamp}" if stamp else "at an unrecorded time"
    if not removed:
        print(f"The original was deleted {when}; it had no renditions.")
        return
    print(f"The original was deleted; its {len(removed)} rendition(s) were removed {when}:")
    for rendition in removed:
        print(f"  {rendition['key']}")


def _reprocess(args: argparse.Namespace) -> int:
    target = _target(args)
    config = ops.current_config(target)
    plan = ops.plan_reprocess(target, config, everything=args.all)
    print(
        f"{len(plan.events)} to reprocess, {plan.current} already current, "
        f"{plan.unrouted} not routed to any profile"
        + (f"; {plan.missing} of them for missing renditions" if plan.missing else "")
        + (f"; {plan.retried} of them after a key collision or a delete" if plan.retried else "")
    )
    if plan.events:
        bar = ProgressBar(len(plan.events), "reprocess")
        ops.send_events(target, plan.events, bar, parallel=args.parallel)
    return 0


def _gallery(args: argparse.Namespace) -> int:
    page = gallery.write(_target(args), args.out, presign=args.presign)
    print(f"Gallery: {page.resolve().as_uri()}")
    return 0


def _events(args: argparse.Namespace) -> int:
    from pipeline.cli import tail

    _stop_on_sigterm()
    try:
        for event in tail.events(_target(args), follow=args.follow):
            print(json.dumps(event) if args.json else tail.line(event), flush=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow ends
    return 0


def _dlq_ls(args: argparse.Namespace) -> int:
    letters = ops.dead_letters(_target(args), hold_s=0)
    if not letters:
        print("The dead-letter queue is empty.")
    for letter in letters:
        keys = ", ".join(letter.keys) or "(no S3 records)"
        print(f"{keys}  attempts={letter.attempts}  {letter.error}")
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    target = _target(args)
    letters = ops.dead_letters(target, hold_s=60)  # hidden while they are sent again
    count = ops.redrive(target, ProgressBar(len(letters), "redrive"), letters)
    print(f"Redrove {count} event(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
