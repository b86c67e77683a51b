"""profiles/schema.json: in sync with the schema module, and agreeing with it."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
import token
import tokenize

import jsonschema
import pytest
import yaml

from lambda_pkg import profile_fields, profiles
from lambda_pkg.profile_fields import defaults, specs
from lambda_pkg.profiles import PROFILES_DIR, ProfileError, available_profiles, profile_from_dict
from pipeline import profile_schema
from tests.support.profiles import VALID

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


# -- each limit written once ------------------------------------------------------------

REPO = PROFILES_DIR.parent
SOURCES = sorted([*(REPO / "lambda_pkg").rglob("*.py"), *(REPO / "pipeline").rglob("*.py")])
DECLARED = [profiles.Profile, profiles.Rendition, profiles.Resize]


def literals(path, kind):
    with path.open("rb") as source:
        tokens = [t.string for t in tokenize.tokenize(source.readline) if t.type == kind]
    return [ast.literal_eval(t) for t in tokens if kind != token.STRING or t[:1] in "\"'rR"]


def declared_numbers():
    numbers = set()
    for cls in DECLARED:
        for name, spec in specs(cls).items():
            numbers |= {spec.low, spec.high, defaults(cls)[name]}
    return {n for n in numbers if isinstance(n, int) and not isinstance(n, bool)}


def declared_strings():
    strings = {profile_fields.NAME_PATTERN, profile_fields.COLOUR_PATTERN, profiles.OUTPUT_PREFIX}
    for cls in DECLARED:
        for name, spec in specs(cls).items():
            strings |= {*spec.choices, *spec.formats, *spec.modes}
            if isinstance(defaults(cls)[name], str):
                strings.add(defaults(cls)[name])
    return strings - {""}


@pytest.mark.parametrize("pattern", [profile_fields.NAME_PATTERN, profile_fields.COLOUR_PATTERN])
def test_each_pattern_is_written_once(pattern):
    # GIVEN the pattern without its anchors, so an unanchored copy is caught too
    body = pattern.strip("^$")
    # THEN the source of the function and of the program spell it exactly once
    places = [str(p) for p in SOURCES for _ in range(p.read_text().count(body))]
    assert len(places) == 1, places


def test_the_schema_generator_writes_no_limit_choice_or_default():
    path = REPO / "pipeline" / "profile_schema.py"
    # 0 and 1 are too common to prove a copy; `minItems: 1` is what "non-empty" means.
    assert set(literals(path, token.NUMBER)) & declared_numbers() <= {0, 1}
    assert not set(literals(path, token.STRING)) & declared_strings()


def test_distinctive_limits_and_defaults_are_written_once():
    # Round numbers (100, 1000) also mean other things; these can only be copies.
    distinctive = {n for n in declared_numbers() if n >= 100 and str(n).rstrip("0") != "1"}
    assert distinctive >= {profiles.MAX_SHARPEN, profiles.MAX_DIMENSION}
    for number in distinctive:
        places = [str(p) for p in SOURCES for n in literals(p, token.NUMBER) if n == number]
        assert len(places) <= 1, (number, places)


def test_neither_the_schema_nor_the_program_loads_pillow():
    # pipeline/ never imports Pillow, and it imports the schema module.
    code = (
        "import sys, lambda_pkg.profiles, pipeline.profile_schema, pipeline.program.routing, "
        "pipeline.program.stack; print(sorted(m for m in sys.modules if m.split('.')[0] == 'PIL'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_schema_accepts_a_list_of_formats_and_refuses_same_in_it():
    data = copy.deepcopy(VALID)
    data["renditions"][0]["format"] = ["avif", "webp", "jpeg"]
    jsonschema.validate(data, SCHEMA)
    profile_from_dict(copy.deepcopy(data), "sample.yaml")
    for bad in (["webp", "webp"], ["same", "jpeg"], []):
        data["renditions"][0]["format"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, SCHEMA)
        with pytest.raises(ProfileError):
            profile_from_dict(copy.deepcopy(data), "sample.yaml")


def test_schema_takes_a_value_per_format_within_the_option_s_own_limits():
    # GIVEN a rendition in two formats with a quality per format
    data = copy.deepcopy(VALID)
    data["renditions"][0].update(format=["webp", "jpeg"], quality={"webp": 80, "jpeg": 82})
    jsonschema.validate(data, SCHEMA)
    profile_from_dict(copy.deepcopy(data), "sample.yaml")
    # THEN a value out of the option's range, or a format the option has no use for, is
    # refused by both
    for bad in ({"webp": 80, "jpeg": 101}, {"webp": 80, "gif": 82}, {}):
        data["renditions"][0]["quality"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, SCHEMA)
        with pytest.raises(ProfileError):
            profile_from_dict(copy.deepcopy(data), "sample.yaml")
