"""The one item reader and writer (lambda_pkg/wire.py) and the client factory behind it."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from unittest import mock

from lambda_pkg import clients, wire
from lambda_pkg.records import TABLE_KEY, table_definition

ITEM = {
    "image_name": "input/photo.jpg",
    "status": "ok",
    "original_width": 1920,
    "has_icc": False,
    "renditions": [{"key": "processed/thumb_photo.jpg", "width": 200}],
}


def test_an_item_goes_to_the_wire_typed_and_comes_back_with_decimal_numbers() -> None:
    raw = wire.encode(ITEM)
    assert raw["image_name"] == {"S": "input/photo.jpg"}
    assert raw["original_width"] == {"N": "1920"}
    assert raw["has_icc"] == {"BOOL": False}
    assert raw["renditions"] == {
        "L": [{"M": {"key": {"S": "processed/thumb_photo.jpg"}, "width": {"N": "200"}}}]
    }
    item = wire.decode(raw)
    assert item == ITEM and isinstance(item["original_width"], Decimal)


def test_plain_gives_the_commands_ints_all_the_way_down() -> None:
    item = wire.plain(wire.decode(wire.encode(ITEM)))
    assert item == ITEM
    assert type(item["original_width"]) is int
    assert type(item["renditions"][0]["width"]) is int
    assert wire.plain(Decimal("1.5")) == 1.5


def test_key_and_names_follow_the_table_spec() -> None:
    (key,) = table_definition()["KeySchema"]
    assert key["AttributeName"] == TABLE_KEY
    assert wire.key("a.jpg") == {TABLE_KEY: {"S": "a.jpg"}}
    pages = [{"Items": [wire.key("owner#x"), wire.key("owner#y")]}, {"Items": []}, {}]
    assert wire.names(pages) == ["owner#x", "owner#y"]


def test_importing_the_function_package_does_not_import_boto3() -> None:
    # Cold start: boto3 loads when the first client or item needs it (lambda_pkg/clients.py)
    code = (
        "import sys, lambda_pkg.handler, lambda_pkg.wire, lambda_pkg.records;"
        "assert 'boto3' not in sys.modules, 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_client_is_made_once_per_container() -> None:
    clients.client.cache_clear()
    try:
        with mock.patch("boto3.client", side_effect=lambda service: object()) as make:
            first = clients.client("s3")
            assert clients.client("s3") is first
            assert clients.client("dynamodb") is not first
        assert [call.args for call in make.call_args_list] == [("s3",), ("dynamodb",)]
    finally:
        clients.client.cache_clear()
