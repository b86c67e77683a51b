"""profiles/schema.json: in sync with the schema module, and agreeing with it."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from lambda_pkg import profiles
from lambda_pkg.profiles import PROFILES_DIR, ProfileError, available_profiles, profile_from_dict
from pipeline import profile_schema
from tests.test_profiles import VALID

SCHEMA = json.loads((PROFILES_DIR / "schema.json").read_text())


def test_committed_schema_is_the_generated_one():
    assert (PROFILES_DIR / "schema.json").read_text() == profile_schema.render(), (
        "regenerate: python -m pipeline.profile_schema > profiles/schema.json"
    )


def test_schema_names_exactly_the_keys_the_validator_accepts():
    top = SCHEMA["properties"]
    rendition = top["renditions"]["items"]["properties"]
    assert set(top) == profiles._PROFILE_KEYS
    assert set(rendition) == profiles._RENDITION_KEYS
    assert set(rendition["resize"]["properties"]) == profiles._RESIZE_KEYS


@pytest.mark.parametrize("name", available_profiles())
def test_shipped_profiles_validate(name):
    data = yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())
    jsonschema.validate(data, SCHEMA)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(colour="red"),
        lambda d: d["renditions"][0].update(format="gif"),
        lambda d: d["renditions"][0]["resize"].update(width=-5),
        lambda d: d["renditions"][0]["resize"].update(width="400"),
        lambda d: d["renditions"][0]["resize"].pop("height"),
        lambda d: d["renditions"][1]["resize"].update(height=100),
        lambda d: d["renditions"][0].update(quality=101),
        lambda d: d["renditions"][0].update(key="thumbs/{key}.{ext}"),
        lambda d: d["renditions"][0]["resize"].update(mode="stretch"),
        lambda d: d.update(renditions=[]),
        lambda d: d.update(background="white"),
    ],
)
def test_schema_and_validator_both_refuse(change):
    data = copy.deepcopy(VALID)
    change(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
    with pytest.raises(ProfileError):
        profile_from_dict(data, "sample.yaml")


def test_schema_accepts_what_the_validator_accepts():
    jsonschema.validate(VALID, SCHEMA)
    profile_from_dict(copy.deepcopy(VALID), "sample.yaml")
