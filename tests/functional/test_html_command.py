"""`imgpipe html KEY`: the handler's real item (moto) becomes a `<picture>` element."""

from __future__ import annotations

import dataclasses

import pytest

from lambda_pkg.handler import process_event
from pipeline.cli import commands as cli
from pipeline.cli.targets import Target
from pipeline.program.names import resource_names
from tests.support import images
from tests.support.aws import INPUT_BUCKET, OUTPUT_BUCKET, TABLE, put_event
from tests.support.tags import start_tags

CDN = "http://127.0.0.1:8765"


@dataclasses.dataclass(frozen=True)
class CdnTarget(Target):
    """A target that knows its CDN URL, as the stack's Target does once it has one."""

    cdn: str | None = None


@pytest.fixture
def processed(aws):
    """input/photo.jpg through the handler with the web profile; a target naming its table."""
    data = images.jpeg(2400, 1600)
    aws.upload("input/photo.jpg", data)
    event = put_event(INPUT_BUCKET, "input/photo.jpg", len(data))
    process_event(event, aws.settings("web"), aws.s3, aws.dynamodb)
    names = dataclasses.replace(
        resource_names("imgpipe", "test"),
        input_bucket=INPUT_BUCKET,
        output_bucket=OUTPUT_BUCKET,
        metadata_table=TABLE,
    )
    return aws, names


def run(monkeypatch, capsys, target: Target, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_target", lambda args: target)
    args = cli._parser().parse_args(argv)
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_html_prints_a_picture_whose_urls_are_the_objects_written(processed, monkeypatch, capsys):
    aws, names = processed
    # WHEN `imgpipe html` runs against a stack with a CDN URL
    code, out, _ = run(
        monkeypatch, capsys, CdnTarget(names=names, cdn=CDN), "html", "input/photo.jpg"
    )
    # THEN it prints <picture><source type=image/webp><img> with every width
    assert code == 0
    tags = start_tags(out)
    assert [tag for tag, _ in tags] == ["picture", "source", "img"]
    source, img = tags[1][1], tags[2][1]
    assert source["type"] == "image/webp"
    urls = [part.split()[0] for part in f"{source['srcset']}, {img['srcset']}".split(", ")]
    assert [u.rsplit("/", 1)[-1] for u in urls] == [
        "w320.webp",
        "w800.webp",
        "w1600.webp",
        "w320.jpg",
        "w800.jpg",
        "w1600.jpg",
    ]
    # AND every URL is an object the handler wrote, under the CDN
    written = set(aws.output_keys())
    for address in [*urls, img["src"]]:
        assert address.startswith(f"{CDN}/") and address.removeprefix(f"{CDN}/") in written
    assert (img["width"], img["height"]) == ("1600", "1067")
    assert img["style"] == f"background-color:{aws.item('input/photo.jpg')['dominant_color']}"


def test_html_takes_a_base_url_and_alt_text(processed, monkeypatch, capsys):
    _, names = processed
    code, out, _ = run(
        monkeypatch,
        capsys,
        Target(names=names),
        "html",
        "input/photo.jpg",
        "--base-url",
        "https://img.example.com/",
        "--alt",
        "A photo",
    )
    (_, _, (_, img)) = start_tags(out)
    assert code == 0 and img["alt"] == "A photo"
    assert img["src"] == "https://img.example.com/processed/input/photo.jpg/w800.jpg"


def test_html_without_a_cdn_or_base_url_says_what_to_pass(processed, monkeypatch, capsys):
    _, names = processed
    code, out, err = run(monkeypatch, capsys, Target(names=names), "html", "input/photo.jpg")
    assert (code, out) == (2, "")
    assert "--base-url" in err


def test_html_of_an_unknown_key_is_one_line(processed, monkeypatch, capsys):
    _, names = processed
    target = CdnTarget(names=names, cdn=CDN)
    code, out, err = run(monkeypatch, capsys, target, "html", "input/nope.jpg")
    assert (code, out) == (
        1,
        "",
    ) and err.strip() == "imgpipe: no metadata item for 'input/nope.jpg'"
