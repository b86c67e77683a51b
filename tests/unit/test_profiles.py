"""The profile schema: shipped profiles load, and every bad profile names what is wrong."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_pkg.profile_fields import READERS, PerFormat, defaults, plain, read, specs
from lambda_pkg.profiles import (
    CACHE_HASHED,
    CACHE_IN_PLACE,
    EXTENSIONS,
    FORMAT_OPTIONS,
    HASH_DIGITS,
    MEDIA_TYPES,
    PipelineConfig,
    Profile,
    ProfileError,
    Rendition,
    Resize,
    Route,
    available_profiles,
    canonical_template,
    load_named,
    load_profile,
    profile_from_dict,
    render_key,
    source_hash,
)
from tests.support.profiles import VALID


def write(tmp_path: Path, data: Any, name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def broken(change) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    change(data)
    return data


def test_shipped_profiles_load_and_round_trip_through_profile_config():
    assert {"thumbnail", "web"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_named(name)
        config = PipelineConfig.single(profile)
        assert PipelineConfig.from_json(config.to_json()) == config


def test_thumbnail_reproduces_the_seed():
    profile = load_named("thumbnail")
    (thumb,) = profile.renditions
    assert (thumb.resize.mode, thumb.resize.width, thumb.format) == ("width", 200, "jpeg")
    assert render_key(thumb.key, "input/photo.jpg", thumb.name, "jpg") == (
        "processed/thumb_photo.jpg"
    )


def test_web_has_three_widths_in_webp_with_jpeg_fallbacks():
    renditions = load_named("web").renditions
    widths = {r.resize.width for r in renditions if r.resize.mode == "width"}
    assert len(widths) >= 3
    for width in widths:
        (rendition,) = [r for r in renditions if r.resize.width == width]
        assert rendition.formats == ("webp", "jpeg")  # JPEG last: the fallback
        assert canonical_template(rendition) == "processed/{key}/{rendition}"


def test_valid_profile_loads_with_defaults(tmp_path):
    profile = load_profile(write(tmp_path, VALID))
    assert profile.name == "sample"
    assert profile.renditions[1].quality == 85
    assert profile.renditions[0].resize.upscale is False
    assert profile.max_pixels == 50_000_000


def test_content_hash_changes_when_output_changes(tmp_path):
    first = load_profile(write(tmp_path, VALID))
    second = load_profile(write(tmp_path, broken(lambda d: d["renditions"][0].update(quality=81))))
    assert first.content_hash() != second.content_hash()
    assert first.content_hash() == load_profile(write(tmp_path, VALID)).content_hash()


@pytest.mark.parametrize(
    ("change", "field", "value", "allowed"),
    [
        (lambda d: d.update(colour="red"), "colour", "colour", "one of the keys"),
        (
            lambda d: d["renditions"][0].update(blur=True),
            "renditions[0].blur",
            "blur",
            "one of the keys",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(width="400"),
            "renditions[0].resize.width",
            "400",
            "a whole number >= 1",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(width=-5),
            "renditions[0].resize.width",
            -5,
            "a whole number >= 1",
        ),
        (
            lambda d: d["renditions"][1]["resize"].update(width=True),
            "renditions[1].resize.width",
            True,
            "a whole number",
        ),
        (
            lambda d: d["renditions"][0].update(format="gif"),
            "renditions[0].format",
            "gif",
            "one of jpeg, png, webp, avif, same",
        ),
        (
            lambda d: d["renditions"][0].update(quality=101),
            "renditions[0].quality",
            101,
            "from 1 to 100",
        ),
        (
            lambda d: d["renditions"][1].update(name="small"),
            "renditions[1].name",
            "small",
            "not already used by renditions[0]",
        ),
        (
            lambda d: d["renditions"][1].update(key="processed/{key}/small.{ext}", format="webp"),
            "renditions[1].key",
            "processed/{key}/small.{ext}",
            "different from renditions[0]",
        ),
        (  # for a source key named `jpg` both give processed/jpg.jpg
            lambda d: (
                d["renditions"][0].update(key="processed/{key}.{ext}", format="jpeg"),
                d["renditions"][1].update(key="processed/{path}.{name}"),
            ),
            "renditions[1].key",
            "processed/{path}.{name}",
            "for the source key 'jpg' both give processed/jpg.jpg",
        ),
        (
            lambda d: d["renditions"][0].update(key="processed/{stem}.{ext}"),
            "renditions[0].key",
            "processed/{stem}.{ext}",
            "tells photo.jpg from photo.png",
        ),
        (
            lambda d: d["renditions"][0].update(key="processed/{name}-{rendition}.{ext}"),
            "renditions[0].key",
            "processed/{name}-{rendition}.{ext}",
            "flatten_folders: true",
        ),
        (
            lambda d: d["renditions"][0].update(key="thumbs/{key}.{ext}"),
            "renditions[0].key",
            "thumbs/{key}.{ext}",
            "a key under 'processed/'",
        ),
        (
            lambda d: d["renditions"][0].update(key="processed/{size}/{key}"),
            "renditions[0].key",
            "processed/{size}/{key}",
            "only the placeholders",
        ),
        (
            lambda d: d["renditions"][0].update(key="processed/all.jpg"),
            "renditions[0].key",
            "processed/all.jpg",
            "naming the source",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(mode="stretch"),
            "renditions[0].resize.mode",
            "stretch",
            "one of fit, width, height, cover",
        ),
        (
            lambda d: d["renditions"][1]["resize"].update(height=100),
            "renditions[1].resize.height",
            100,
            "nothing (mode width",
        ),
        (
            lambda d: d["renditions"][0]["resize"].pop("height"),
            "renditions[0].resize.height",
            None,
            "a size (mode fit)",
        ),
        (
            lambda d: d["renditions"][0].pop("key"),
            "renditions[0].key",
            None,
            "required",
        ),
        (lambda d: d.update(renditions=[]), "renditions", [], "a non-empty list"),
        (
            lambda d: d.update(input_formats=["jpeg", "eps"]),
            "input_formats[1]",
            "eps",
            "one of jpeg, png",
        ),
        (lambda d: d.update(max_pixels=0), "max_pixels", 0, ">= 1"),
        (lambda d: d.update(background="white"), "background", "white", "'#ffffff'"),
        (
            lambda d: d["renditions"][1].update(format="png", quality=90),
            "renditions[1].quality",
            90,
            "no quality for png",
        ),
        # options added after the seed
        (
            lambda d: d["renditions"][1].update(progressive="yes"),
            "renditions[1].progressive",
            "yes",
            "true or false",
        ),
        (
            lambda d: d["renditions"][1].update(subsampling="4:1:1"),
            "renditions[1].subsampling",
            "4:1:1",
            "one of 4:4:4, 4:2:2, 4:2:0",
        ),
        (
            lambda d: d["renditions"][0].update(progressive=True),
            "renditions[0].progressive",
            True,
            "no progressive for webp (it applies to jpeg)",
        ),
        (lambda d: d["renditions"][0].update(method=7), "renditions[0].method", 7, "from 0 to 6"),
        (
            lambda d: d["renditions"][1].update(lossless=True),
            "renditions[1].lossless",
            True,
            "no lossless for jpeg",
        ),
        (
            lambda d: d["renditions"][1].update(format="avif", speed=11),
            "renditions[1].speed",
            11,
            "from 0 to 10",
        ),
        (
            lambda d: (
                d["renditions"][1].update(format="png", quality=None)
                or d["renditions"][1].pop("quality", None)
                or d["renditions"][1].update(compress_level=3)
            ),
            "renditions[1].compress_level",
            3,
            "nothing with optimize: true",
        ),
        (
            lambda d: d["renditions"][1].update(sharpen=501),
            "renditions[1].sharpen",
            501,
            "from 0 to 500",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(gravity="north"),
            "renditions[0].resize.gravity",
            "north",
            "one of center, top, bottom, left, right",
        ),
        (
            lambda d: d["renditions"][1]["resize"].update(gravity="top"),
            "renditions[1].resize.gravity",
            "top",
            "gravity is for cover",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(background="#000000"),
            "renditions[0].resize.background",
            "#000000",
            "background is for pad",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(mode="pad", background="black"),
            "renditions[0].resize.background",
            "black",
            "'#ffffff'",
        ),
        (
            lambda d: d["renditions"][0]["resize"].update(kernel="lanczos2"),
            "renditions[0].resize.kernel",
            "lanczos2",
            "one of lanczos, bicubic, bilinear, nearest",
        ),
        (lambda d: d.update(icc="keep"), "icc", "keep", "one of strip, embed"),
        (lambda d: d.update(keep_metadata=1), "keep_metadata", 1, "true or false"),
        (lambda d: d.update(keep_animation="no"), "keep_animation", "no", "true or false"),
        (lambda d: d.update(max_frames=0), "max_frames", 0, ">= 1"),
        (lambda d: d.update(input_formats=["heif"]), "input_formats[0]", "heif", "heic"),
        # -- several formats per rendition, {hash} and cache_control (issue 15) --
        (
            lambda d: d["renditions"][0].update(format=["webp", "jpeg", "webp"]),
            "renditions[0].format[2]",
            "webp",
            "a format not already listed (at [0])",
        ),
        (
            lambda d: d["renditions"][0].update(format=["webp", "gif"]),
            "renditions[0].format[1]",
            "gif",
            "one of jpeg, png, webp, avif",
        ),
        (
            lambda d: d["renditions"][0].update(format=["same", "jpeg"]),
            "renditions[0].format[0]",
            "same",
            "same only as the single format",
        ),
        (
            lambda d: d["renditions"][0].update(format=[]),
            "renditions[0].format",
            [],
            "a non-empty list",
        ),
        (
            lambda d: d["renditions"][0].update(
                format=["webp", "jpeg"], key="processed/{key}/{rendition}-{ext}"
            ),
            "renditions[0].key",
            "processed/{key}/{rendition}-{ext}",
            "a template ending in '.{ext}'",
        ),
        (
            lambda d: d["renditions"][0].update(
                format=["webp", "jpeg"], key="processed/{ext}/{key}/{rendition}.{ext}"
            ),
            "renditions[0].key",
            "processed/{ext}/{key}/{rendition}.{ext}",
            "with {ext} nowhere else",
        ),
        (
            lambda d: d["renditions"][0].update(format=["webp", "jpeg"], speed=4),
            "renditions[0].speed",
            4,
            "no speed for webp, jpeg (it applies to avif)",
        ),
        (
            lambda d: d["renditions"][1].update(format=["png", "jpeg"], compress_level=9),
            "renditions[1].compress_level",
            9,
            "nothing with optimize: true",
        ),
        (  # the canonical key of one rendition is another's object
            lambda d: (
                d["renditions"][0].update(format=["webp", "jpeg"], key="processed/{key}.{ext}"),
                d["renditions"][1].update(key="processed/{key}"),
            ),
            "renditions[1].key",
            "processed/{key}",
            "different from renditions[0]",
        ),
        (
            lambda d: d["renditions"][0].update(key="processed/{key}/{hash:.4}.{ext}"),
            "renditions[0].key",
            "processed/{key}/{hash:.4}.{ext}",
            "only the placeholders",
        ),
        (
            lambda d: d.update(cache_control="public, max-age=31536000, immutable"),
            "cache_control",
            "public, max-age=31536000, immutable",
            "put {hash} in the key, or drop immutable",
        ),
        (
            lambda d: d["renditions"][1].update(cache_control="max-age=60\r\nX-Evil: 1"),
            "renditions[1].cache_control",
            "max-age=60\r\nX-Evil: 1",
            "no line breaks",
        ),
        (lambda d: d.update(cache_control=""), "cache_control", "", "1 to 256 printable"),
    ],
)
def test_invalid_profile_names_file_field_value_and_what_is_allowed(
    tmp_path, change, field, value, allowed
):
    path = write(tmp_path, broken(change))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert (error.source, error.path, error.value) == (str(path), field, value)
    message = str(error)
    assert message.startswith(f"{path}: {field}: got {value!r}; allowed: ")
    assert allowed in message


def test_yaml_that_is_not_a_mapping_or_not_yaml(tmp_path):
    with pytest.raises(ProfileError, match=r"\(top level\).*a mapping"):
        load_profile(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ProfileError, match="valid YAML"):
        load_profile(write(tmp_path, "renditions: [unclosed\n"))


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ProfileError, match="one of thumbnail, web"):
        load_named("nope")


def test_profile_config_routes_pick_profiles_by_prefix_and_suffix():
    thumbnail, web = load_named("thumbnail"), load_named("web")
    config = PipelineConfig(
        profiles=(thumbnail, web),
        routes=(Route("web", prefix="gallery/", suffix=".png"), Route("thumbnail")),
    )
    restored = PipelineConfig.from_json(config.to_json())
    assert restored.profile_for("gallery/x.png").name == "web"
    assert restored.profile_for("gallery/x.jpg").name == "thumbnail"


def test_profile_config_rejects_a_route_to_a_missing_profile():
    config = PipelineConfig(profiles=(load_named("thumbnail"),), routes=(Route("web"),))
    with pytest.raises(ProfileError, match=r"routes\[0\]\.profile: got 'web'"):
        PipelineConfig.from_json(config.to_json())


@pytest.mark.parametrize(
    ("template", "key", "expected"),
    [
        ("processed/{key}/{rendition}.{ext}", "a/b c.jpg", "processed/a/b c.jpg/w.webp"),
        ("processed/{dir}{stem}-{rendition}.{ext}", "a/b.jpg", "processed/a/b-w.webp"),
        ("processed/{path}_{rendition}.{ext}", "top.png", "processed/top_w.webp"),
        ("processed/thumb_{name}", ".hidden", "processed/thumb_.hidden"),
    ],
)
def test_render_key(template, key, expected):
    assert render_key(template, key, "w", "webp") == expected


# -- options added for formats, resize rules, colour, metadata and animation ---------------


def test_every_option_round_trips_and_defaults_stay_out_of_the_json(tmp_path):
    full = broken(
        lambda d: (
            d.update(
                keep_metadata=True,
                icc="embed",
                keep_animation=True,
                max_frames=20,
                input_formats=["jpeg", "heic"],
            ),
            d["renditions"][1].update(
                progressive=True, subsampling="4:4:4", optimize=False, sharpen=80
            ),
            d["renditions"][0].update(lossless=True, method=6),
            d["renditions"][0]["resize"].update(mode="cover", gravity="attention"),
            d["renditions"][1]["resize"].update(kernel="bicubic"),
        )
    )
    profile = load_profile(write(tmp_path, full))
    config = PipelineConfig.single(profile)
    assert PipelineConfig.from_json(config.to_json()) == config
    assert profile.renditions[0].resize.gravity == "attention"
    assert profile.renditions[1].progressive and profile.renditions[1].sharpen == 80
    assert profile.renditions[1].resize.kernel == "bicubic"

    plain = PipelineConfig.single(load_profile(write(tmp_path, VALID))).to_json()
    for option in (
        "progressive",
        "subsampling",
        "gravity",
        "kernel",
        "keep_metadata",
        "max_frames",
        "lossless",
    ):
        assert f'"{option}"' not in plain


def test_shipped_profiles_fit_the_lambda_environment():
    config = PipelineConfig(
        profiles=tuple(load_named(n) for n in available_profiles()),
        routes=tuple(Route(n, prefix=f"{n}/") for n in available_profiles()),
    )
    assert len(config.to_json()) < 3000  # Lambda allows 4 KB for all variables together


# -- the declarations -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Profile, Rendition, Resize])
def test_every_default_passes_its_own_declaration(cls):
    for name, spec in specs(cls).items():
        default = defaults(cls)[name]
        if default is dataclasses.MISSING or default is None or spec.kind not in READERS:
            continue
        value = list(default) if isinstance(default, tuple) else default
        assert read(spec, value, "declared", name) == default, name


def test_encoder_options_and_their_formats_are_the_declared_ones():
    assert FORMAT_OPTIONS == {
        "quality": ("jpeg", "webp", "avif"),
        "progressive": ("jpeg",),
        "subsampling": ("jpeg",),
        "optimize": ("jpeg", "png"),
        "compress_level": ("png",),
        "lossless": ("webp",),
        "method": ("webp",),
        "speed": ("avif",),
    }


def test_the_serialised_form_leaves_out_unset_defaulted_and_other_formats_options():
    # GIVEN a png rendition: quality does not apply; compress_level is set, lossless at default
    resize = Resize("width", width=100)
    png = Rendition("p", resize, "png", "processed/{key}.{ext}", optimize=False, compress_level=9)
    # WHEN serialised
    data = plain(png)
    # THEN height (unset), quality (jpeg/webp/avif only) and defaulted options are left out
    assert data == {
        "name": "p",
        "resize": {"mode": "width", "width": 100, "upscale": False},
        "format": "png",
        "key": "processed/{key}.{ext}",
        "optimize": False,
        "compress_level": 9,
    }
    # AND `same` may become any format, so every option stays
    assert plain(dataclasses.replace(png, format="same"))["quality"] == 85


def test_route_entries_are_checked_against_the_profiles_of_the_config():
    config = PipelineConfig.single(load_named("thumbnail"))
    text = config.to_json().replace('"prefix":""', '"prefix":"a/*"')
    with pytest.raises(ProfileError, match=r"routes\[0\]\.prefix: got 'a/\*'; allowed: literal"):
        PipelineConfig.from_json(text)


# -- several formats, {hash} and Cache-Control (issue 15) --------------------------------


def multi(formats: Any, key: str = "processed/{key}/{rendition}.{ext}", **more: Any) -> Profile:
    data = broken(lambda d: d["renditions"][0].update(format=formats, key=key, **more))
    return profile_from_dict(data, "sample.yaml")


def test_a_list_of_formats_keeps_its_order_and_a_single_format_is_a_one_tuple():
    profile = multi(["avif", "webp", "jpeg"])
    first, second = profile.renditions
    assert (first.formats, second.formats) == (("avif", "webp", "jpeg"), ("jpeg",))
    assert canonical_template(first) == "processed/{key}/{rendition}"
    assert canonical_template(second) is None
    # a list of one is that format: no canonical key, serialised as before
    assert multi(["webp"]).renditions[0].format == "webp"


def test_a_multi_format_profile_round_trips_and_options_apply_to_any_of_its_formats():
    profile = multi(["avif", "webp", "jpeg"], speed=6, lossless=False, progressive=True)
    config = PipelineConfig.single(profile)
    assert PipelineConfig.from_json(config.to_json()) == config
    assert '"format":["avif","webp","jpeg"]' in config.to_json()
    assert profile.renditions[0].speed == 6 and profile.renditions[0].progressive


def test_media_types_and_extensions_cover_the_same_concrete_formats():
    assert set(MEDIA_TYPES) == set(EXTENSIONS)
    assert all(t == f"image/{f}" for f, t in MEDIA_TYPES.items())


def test_hash_in_a_key_template_needs_the_source_hash():
    template = "processed/{key}/{hash}/{rendition}.{ext}"
    web, thumbnail = load_named("web"), load_named("thumbnail")
    digest = source_hash(b"one picture", web)
    assert len(digest) == HASH_DIGITS and int(digest, 16) >= 0
    assert source_hash(b"one picture", web) == digest  # deterministic: a retry overwrites
    assert source_hash(b"another picture", web) != digest
    assert source_hash(b"one picture", thumbnail) != digest  # other settings, other keys
    assert (
        render_key(template, "a/b.jpg", "w", "webp", digest) == f"processed/a/b.jpg/{digest}/w.webp"
    )
    with pytest.raises(ValueError, match="content hash"):
        render_key(template, "a/b.jpg", "w", "webp")


def test_hash_alone_does_not_name_the_source():
    # identical bytes under two names would meet at one key
    with pytest.raises(ProfileError, match="a template naming the source"):
        multi("webp", key="processed/{hash}.{ext}", cache_control=None)


def test_cache_control_defaults_by_key_and_overrides_per_rendition():
    # GIVEN a {hash} rendition and one written in place, no cache_control set
    profile = multi(["webp", "jpeg"], key="processed/{key}/{hash}/{rendition}.{ext}")
    hashed, in_place = profile.renditions
    assert profile.hashes_sources
    assert profile.cache_control_of(hashed) == CACHE_HASHED
    assert profile.cache_control_of(in_place) == CACHE_IN_PLACE
    assert "immutable" in CACHE_HASHED and "immutable" not in CACHE_IN_PLACE
    # WHEN the profile and one rendition set their own
    data = broken(lambda d: d.update(cache_control="no-cache"))
    data["renditions"][1]["cache_control"] = "public, max-age=60"
    profile = profile_from_dict(data, "sample.yaml")
    # THEN the rendition's wins over the profile's, which wins over the default
    assert [profile.cache_control_of(r) for r in profile.renditions] == [
        "no-cache",
        "public, max-age=60",
    ]
    assert not profile.hashes_sources


def test_new_options_left_unset_keep_the_shipped_profiles_hashes():
    # what main shipped before issue 15 hashed to these; an unset option must not move them
    assert load_named("thumbnail").content_hash() == "d819a2c5ed7c3955"


# -- encoder options per format ----------------------------------------------------------


def test_an_option_of_several_formats_may_be_given_per_format():
    # GIVEN a [webp, jpeg] rendition with a quality per format
    profile = multi(["webp", "jpeg"], quality={"jpeg": 82, "webp": 80})
    rendition = profile.renditions[0]
    # THEN each format's encode gets its own quality, and the rest of its options
    assert (rendition.option("quality", "webp"), rendition.option("quality", "jpeg")) == (80, 82)
    assert rendition.encoder_options("webp") == {"quality": 80, "lossless": False, "method": 4}
    assert rendition.encoder_options("jpeg") == {
        "quality": 82,
        "progressive": False,
        "subsampling": "4:2:0",
        "optimize": True,
    }
    # AND the values keep the rendition's order of formats, whatever the mapping's
    assert rendition.quality == PerFormat((("webp", 80), ("jpeg", 82)))


def test_per_format_options_round_trip_through_profile_config():
    profile = multi(
        ["png", "webp", "jpeg"],
        quality={"webp": 75, "jpeg": 90},
        optimize={"png": False, "jpeg": True},
        compress_level=9,
    )
    config = PipelineConfig.single(profile)
    text = config.to_json()
    assert '"quality":{"jpeg":90,"webp":75}' in text
    assert '"optimize":{"jpeg":true,"png":false}' in text
    assert PipelineConfig.from_json(text) == config
    # AND a PNG whose optimize is off per format takes its compress_level
    assert profile.renditions[0].encoder_options("png") == {"optimize": False, "compress_level": 9}


def test_a_mapping_of_equal_values_is_the_one_value_and_hashes_as_it():
    mapped = multi(["webp", "jpeg"], quality={"webp": 80, "jpeg": 80})
    single = multi(["webp", "jpeg"], quality=80)
    assert mapped == single and mapped.renditions[0].quality == 80
    assert mapped.content_hash() == single.content_hash()
    assert multi(["webp", "jpeg"], quality={"webp": 80, "jpeg": 82}).content_hash() != (
        single.content_hash()
    )
    # a mapping at the default is left out of the serialised form like the default itself
    defaulted = multi(["png", "jpeg"], optimize={"png": True, "jpeg": True})
    assert "optimize" not in plain(defaulted.renditions[0])


def test_web_gives_webp_q80_and_its_jpeg_fallback_q82():
    for rendition in load_named("web").renditions:
        qualities = {fmt: rendition.option("quality", fmt) for fmt in rendition.formats}
        expected = {"webp": 80, "jpeg": 82} if rendition.resize.mode == "width" else {"webp": 80}
        assert qualities == expected, rendition.name


@pytest.mark.parametrize(
    ("option", "formats", "value", "field", "got", "allowed"),
    [
        (  # a value out of the option's own range, named by its format
            "quality",
            ["webp", "jpeg"],
            {"webp": 80, "jpeg": 101},
            "renditions[0].quality.jpeg",
            101,
            "a whole number from 1 to 100",
        ),
        (
            "quality",
            ["webp", "jpeg"],
            {"webp": "80", "jpeg": 82},
            "renditions[0].quality.webp",
            "80",
            "a whole number >= 1",
        ),
        (  # a format the rendition does not list
            "quality",
            ["webp", "jpeg"],
            {"webp": 80, "jpeg": 82, "avif": 60},
            "renditions[0].quality.avif",
            "avif",
            "one of the keys jpeg, webp",
        ),
        (  # a format of the rendition the option does not apply to
            "quality",
            ["png", "jpeg"],
            {"png": 80, "jpeg": 82},
            "renditions[0].quality.png",
            "png",
            "one of the keys jpeg",
        ),
        (  # every format the option applies to: none takes the default unseen
            "quality",
            ["avif", "webp", "jpeg"],
            {"avif": 60, "jpeg": 82},
            "renditions[0].quality.webp",
            None,
            "a value (a value per format names each of avif, webp, jpeg)",
        ),
        (  # a single-format rendition has one value
            "quality",
            "jpeg",
            {"jpeg": 82},
            "renditions[0].quality",
            {"jpeg": 82},
            "one value (a value per format is for an option of several formats",
        ),
        (  # an option of one format has one value
            "method",
            ["webp", "jpeg"],
            {"webp": 6},
            "renditions[0].method",
            {"webp": 6},
            "one value",
        ),
        (
            "optimize",
            ["png", "jpeg"],
            {"png": "yes", "jpeg": True},
            "renditions[0].optimize.png",
            "yes",
            "true or false",
        ),
        (
            "quality",
            ["webp", "jpeg"],
            {},
            "renditions[0].quality.webp",
            None,
            "a value (a value per format names each of webp, jpeg)",
        ),
    ],
)
def test_a_bad_value_per_format_names_file_field_value_and_what_is_allowed(
    tmp_path, option, formats, value, field, got, allowed
):
    change = {"format": formats, "key": "processed/{key}/{rendition}.{ext}", option: value}
    path = write(tmp_path, broken(lambda d: d["renditions"][0].update(change)))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert (error.source, error.path, error.value) == (str(path), field, got)
    assert str(error).startswith(f"{path}: {field}: got {got!r}; allowed: {allowed}")


def test_compress_level_is_refused_only_where_png_is_optimized():
    # GIVEN optimize off for the PNG but on for the JPEG: the PNG's zlib level is used
    kept = multi(["png", "jpeg"], optimize={"png": False, "jpeg": True}, compress_level=3)
    assert kept.renditions[0].encoder_options("png")["compress_level"] == 3
    # WHEN the PNG is the optimized one, its level would be ignored: refused
    with pytest.raises(ProfileError, match=r"renditions\[0\]\.compress_level: got 3"):
        multi(["png", "jpeg"], optimize={"png": True, "jpeg": False}, compress_level=3)
