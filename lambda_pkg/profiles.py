"""THE processing-profile schema: load, validate, serialise.

Both the Pulumi program (at `pulumi preview`) and the handler (from PROFILE_CONFIG) go
through `profile_from_dict`, so a profile that would fail at upload fails at deploy.
Pure standard library except PyYAML, imported only when a YAML file is read: the
function gets its profiles as JSON and does not ship PyYAML.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lambda_pkg.profile_fields import (
    PerFormat,
    ProfileError,
    applies,
    declare,
    join,
    plain,
    read,
    read_choice,
    read_fields,
    read_str,
    require_list,
    require_mapping,
    specs,
)
from lambda_pkg.routes import Route, route_from_dict

OUTPUT_PREFIX = "processed/"
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"

OUTPUT_FORMATS = ("jpeg", "png", "webp", "avif", "same")
INPUT_FORMATS = ("jpeg", "png", "gif", "webp", "tiff", "bmp", "avif", "heic")
# Each resize mode and the sizes it takes: exactly these, no others.
MODE_SIZES: dict[str, tuple[str, ...]] = {
    "fit": ("width", "height"),  # inside a box
    "width": ("width",),
    "height": ("height",),
    "cover": ("width", "height"),  # exact size, cropped
    "pad": ("width", "height"),  # exact size, letterboxed
}
RESIZE_MODES = tuple(MODE_SIZES)
# Where a cover crop sits: fixed edges, or "smart" (entropy: most detail; attention: edges,
# saturation and skin-like colours, in the spirit of libvips' smartcrop).
GRAVITIES = ("center", "top", "bottom", "left", "right", "entropy", "attention")
# The resampling kernel of a rendition's final resize pass. lanczos (3 lobes) is what
# libvips and sharp default to; bicubic costs ~40% less for a shrink and, under a JPEG
# encode, differs from it by far less than the encode's own error; nearest is for pixel art.
KERNELS = ("lanczos", "bicubic", "bilinear", "nearest")
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
ICC_MODES = ("strip", "embed")
MAX_SHARPEN = 500  # UnsharpMask percent
MAX_FRAMES = 1000
MAX_DIMENSION = 16384
KEY_FIELDS = ("key", "dir", "name", "stem", "path", "ext", "rendition", "hash")
_SOURCE_FIELDS = frozenset({"key", "name", "stem", "path"})
_FOLDER_FIELDS = frozenset({"key", "dir", "path"})
_PLACEHOLDERS = ", ".join("{" + f + "}" for f in KEY_FIELDS)
# A multi-format rendition's keys differ only in this ending; without it, the canonical key.
EXT_SUFFIX = ".{ext}"
# {hash}: this many hex digits of the SHA-256 of the source's bytes and the profile's hash
# (source_hash). 48 bits: two different uploads of one source key meet by chance once in
# ~10^14 pairs, and a key stays short.
HASH_DIGITS = 12
# Cache-Control when neither the rendition nor the profile sets one. A key without {hash}
# is overwritten in place when its source is, so caches may keep it only briefly; a {hash}
# key only ever holds one picture, so it may be cached for a year and never revalidated.
CACHE_IN_PLACE = "public, max-age=3600"
CACHE_HASHED = "public, max-age=31536000, immutable"
_CACHE_DEFAULTS = f"default: '{CACHE_HASHED}' for keys with {{hash}}, else '{CACHE_IN_PLACE}'"


# Each field below is declared once (lambda_pkg/profile_fields.py): the validator, the
# serialised form and profiles/schema.json read type, limits, choices, default and formats
# from here.
@dataclass(frozen=True)
class Resize:
    mode: str = declare(
        kind="choice",
        choices=RESIZE_MODES,
        required=True,
        description=(
            "fit: inside a box; width/height: one side; cover: exact size, cropped; "
            "pad: exact size, letterboxed"
        ),
    )
    width: int | None = declare(None, kind="int", low=1, high=MAX_DIMENSION)
    height: int | None = declare(None, kind="int", low=1, high=MAX_DIMENSION)
    upscale: bool = declare(False, kind="bool")
    gravity: str = declare(
        "center",
        kind="choice",
        choices=GRAVITIES,
        modes=("cover",),
        omit_default=True,
        description="cover only",
    )
    # None: the profile's background.
    background: str | None = declare(
        None, kind="colour", modes=("pad",), nullable=True, description="pad only"
    )
    kernel: str = declare(
        "lanczos",
        kind="choice",
        choices=KERNELS,
        omit_default=True,
        description="resampling kernel of the final resize pass",
    )


@dataclass(frozen=True)
class Rendition:
    name: str = declare(kind="name", required=True)
    resize: Resize = declare(kind="object", of=Resize, required=True)  # noqa: RUF009 (a field)
    # One format, or a list of concrete ones: one picture encoded in each, the last the
    # fallback every browser shows.
    format: str | tuple[str, ...] = declare(
        kind="formats",
        choices=OUTPUT_FORMATS,
        required=True,
        description="one format, or a list of them (the last is the fallback): [avif, webp, jpeg]",
    )
    key: str = declare(
        kind="template",
        required=True,
        description=f"output key template; placeholders: {_PLACEHOLDERS}",
    )
    # Options of several formats may be given per format in a multi-format rendition
    # (`quality: {webp: 80, jpeg: 82}`): read them with `option`, never as attributes.
    quality: int | PerFormat = declare(  # noqa: RUF009 (a field)
        85, kind="int", low=1, high=100, formats=("jpeg", "webp", "avif")
    )
    progressive: bool = declare(False, kind="bool", formats=("jpeg",), omit_default=True)
    subsampling: str = declare(
        "4:2:0", kind="choice", choices=SUBSAMPLINGS, formats=("jpeg",), omit_default=True
    )
    optimize: bool | PerFormat = declare(  # noqa: RUF009 (a field)
        True, kind="bool", formats=("jpeg", "png"), omit_default=True
    )
    compress_level: int = declare(6, kind="int", low=0, high=9, formats=("png",), omit_default=True)
    lossless: bool = declare(False, kind="bool", formats=("webp",), omit_default=True)
    method: int = declare(4, kind="int", low=0, high=6, formats=("webp",), omit_default=True)
    speed: int = declare(8, kind="int", low=0, high=10, formats=("avif",), omit_default=True)
    # UnsharpMask percent after a downscale; 0 = off.
    sharpen: int = declare(0, kind="int", low=0, high=MAX_SHARPEN, omit_default=True)
    # None: the profile's cache_control.
    cache_control: str | None = declare(
        None, kind="header", nullable=True, description="overrides the profile's cache_control"
    )

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats in order, the fallback last; one for a single-format rendition."""
        return (self.format,) if isinstance(self.format, str) else self.format

    def option(self, name: str, fmt: str) -> Any:
        """An encoder option's value for one concrete format: its own when the option is
        given per format, else the rendition's one value."""
        value = getattr(self, name)
        return value.of(fmt) if isinstance(value, PerFormat) else value

    def encoder_options(self, fmt: str) -> dict[str, Any]:
        """Every option declared for a concrete format, with this rendition's value for it.
        The names are Pillow's `save()` parameters."""
        return {name: self.option(name, fmt) for name, on in FORMAT_OPTIONS.items() if fmt in on}


@dataclass(frozen=True)
class Profile:
    # Optional in a profile: it defaults to the file's stem.
    name: str = declare(kind="name")
    renditions: tuple[Rendition, ...] = declare(kind="objects", of=Rendition, required=True)
    description: str = declare("", kind="str")
    max_pixels: int = declare(50_000_000, kind="int", low=1)
    max_bytes: int = declare(50 * 1024 * 1024, kind="int", low=1)
    input_formats: tuple[str, ...] = declare(INPUT_FORMATS, kind="choices", choices=INPUT_FORMATS)
    background: str = declare("#ffffff", kind="colour")
    flatten_folders: bool = declare(False, kind="bool")
    # EXIF, XMP and GPS are stripped unless this opts in.
    keep_metadata: bool = declare(False, kind="bool", omit_default=True)
    # After conversion to sRGB: embed the sRGB profile, or strip it.
    icc: str = declare("strip", kind="choice", choices=ICC_MODES, omit_default=True)
    # Animated GIF/WebP/APNG stay animated in webp/same outputs.
    keep_animation: bool = declare(False, kind="bool", omit_default=True)
    # Frames kept when keep_animation; frames*pixels <= max_pixels.
    max_frames: int = declare(100, kind="int", low=1, high=MAX_FRAMES, omit_default=True)
    # None: chosen per key template (see CACHE_IN_PLACE, CACHE_HASHED).
    cache_control: str | None = declare(
        None,
        kind="header",
        nullable=True,
        description=f"Cache-Control of every rendition written; {_CACHE_DEFAULTS}",
    )

    def to_dict(self) -> dict[str, Any]:
        """The profile as its YAML would spell it (see `profile_fields.plain`)."""
        return plain(self)

    def content_hash(self) -> str:
        """Stable hash of what the profile produces; stored in each item for `reprocess`."""
        import hashlib  # loads OpenSSL (~6 MB RSS): only when an item is written

        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def hashes_sources(self) -> bool:
        """Whether a key template uses {hash}: only then is the source's hash computed."""
        return any("hash" in template_fields(r.key) for r in self.renditions)

    def cache_control_of(self, rendition: Rendition) -> str:
        """The Cache-Control written with the rendition's objects."""
        if rendition.cache_control is not None:
            return rendition.cache_control
        if self.cache_control is not None:
            return self.cache_control
        return CACHE_HASHED if "hash" in template_fields(rendition.key) else CACHE_IN_PLACE


# Encoder options and the concrete formats each applies to; `same` may become any of them.
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    name: spec.formats for name, spec in specs(Rendition).items() if spec.formats
}


@dataclass(frozen=True)
class PipelineConfig:
    """What the function is configured with: the profiles and which keys use which."""

    profiles: tuple[Profile, ...]
    routes: tuple[Route, ...] = field(default=())

    @classmethod
    def single(cls, profile: Profile) -> PipelineConfig:
        return cls(profiles=(profile,), routes=(Route(profile=profile.name),))

    def profile(self, name: str) -> Profile:
        for candidate in self.profiles:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def profile_for(self, key: str) -> Profile | None:
        """The first route that matches the key decides; None means the key is not ours."""
        for route in self.routes:
            if route.matches(key):
                return self.profile(route.profile)
        return None

    def to_json(self) -> str:
        """Compact JSON: the value of the function's PROFILE_CONFIG variable."""
        data = {
            "profiles": [p.to_dict() for p in self.profiles],
            "routes": [asdict(r) for r in self.routes],
        }
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "PROFILE_CONFIG") -> PipelineConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(source, "", text[:80], f"valid JSON ({exc.msg})") from None
        require_mapping(data, source, "", frozenset({"profiles", "routes"}))
        raw_profiles = require_list(data.get("profiles"), source, "profiles", non_empty=True)
        profiles = tuple(
            profile_from_dict(p, source, path=f"profiles[{i}]") for i, p in enumerate(raw_profiles)
        )
        names = [p.name for p in profiles]
        raw_routes = require_list(data.get("routes"), source, "routes", non_empty=True)
        routes = tuple(
            route_from_dict(r, source, f"routes[{i}]", names) for i, r in enumerate(raw_routes)
        )
        return cls(profiles=profiles, routes=routes)


def load_profile(path: str | Path) -> Profile:
    """Read and validate one YAML profile file."""
    import yaml  # only the deploy side reads YAML; the function never does

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(source, "", str(path), f"a readable file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(source, "", text[:60], f"valid YAML ({exc})") from None
    return profile_from_dict(data, source, default_name=Path(path).stem)


def load_named(name: str, directory: str | Path = PROFILES_DIR) -> Profile:
    """`profiles/<name>.yaml`, with a clear error listing the profiles that exist."""
    directory = Path(directory)
    candidate = directory / f"{name}.yaml"
    if not candidate.is_file():
        known = ", ".join(available_profiles(directory)) or "(none)"
        raise ProfileError(str(directory), "profile", name, f"one of {known}")
    return load_profile(candidate)


def available_profiles(directory: str | Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


# -- validation ---------------------------------------------------------------------------

_PROFILE_KEYS = frozenset(specs(Profile))
_RENDITION_KEYS = frozenset(specs(Rendition))
_RESIZE_KEYS = frozenset(specs(Resize))


def profile_from_dict(
    data: Any, source: str, path: str = "", default_name: str | None = None
) -> Profile:
    """Validate a parsed profile. Every problem is a ProfileError naming where it is."""
    require_mapping(data, source, path, _PROFILE_KEYS)
    name = read(specs(Profile)["name"], data.get("name", default_name), source, join(path, "name"))
    values = read_fields(Profile, data, source, path, {"name": name, "renditions": ()})
    where = join(path, "renditions")
    flatten = values.get("flatten_folders", Profile.flatten_folders)
    renditions: list[Rendition] = []
    for i, raw in enumerate(require_list(data.get("renditions"), source, where, non_empty=True)):
        rendition = _rendition(raw, source, f"{where}[{i}]", flatten)
        for j, earlier in enumerate(renditions):
            if earlier.name == rendition.name:
                raise ProfileError(
                    source,
                    f"{where}[{i}].name",
                    rendition.name,
                    f"a name not already used by renditions[{j}]",
                )
        renditions.append(rendition)
    _check_key_collisions(renditions, source, where)
    profile = Profile(**{**values, "renditions": tuple(renditions)})
    _check_cache_control(profile, source, path)
    return profile


def _check_cache_control(profile: Profile, source: str, path: str) -> None:
    """`immutable` promises a key never changes: only a {hash} key keeps that promise."""
    for i, rendition in enumerate(profile.renditions):
        value = profile.cache_control_of(rendition)
        if "immutable" not in value.lower() or "hash" in template_fields(rendition.key):
            continue
        where = f"renditions[{i}].cache_control" if rendition.cache_control else "cache_control"
        allowed = (
            f"no immutable for renditions[{i}] ({rendition.key!r} is overwritten in place "
            "when its source is): put {hash} in the key, or drop immutable"
        )
        raise ProfileError(source, join(path, where), value, allowed)


def _rendition(raw: Any, source: str, path: str, flatten_folders: bool) -> Rendition:
    require_mapping(raw, source, path, _RENDITION_KEYS)
    declared = specs(Rendition)
    for required in (name for name, spec in declared.items() if spec.required):
        if required not in raw:
            raise ProfileError(source, f"{path}.{required}", None, "a value (it is required)")
    name = read(declared["name"], raw["name"], source, f"{path}.name")
    fmt = _format(raw["format"], source, f"{path}.format")
    formats = (fmt,) if isinstance(fmt, str) else fmt
    for option, spec in declared.items():
        if option in raw and not applies(spec, fmt):
            listed = ", ".join(formats)
            allowed = f"no {option} for {listed} (it applies to {', '.join(spec.formats)})"
            raise ProfileError(source, f"{path}.{option}", raw[option], allowed)
    key = _key_template(raw["key"], source, f"{path}.key", flatten_folders)
    if len(formats) > 1:
        _check_multi_format_key(key, source, f"{path}.key")
    resize = _resize(raw["resize"], source, f"{path}.resize")
    known = {"name": name, "format": fmt, "key": key, "resize": resize}
    rendition = Rendition(**read_fields(Rendition, raw, source, path, known, formats))
    if "compress_level" in raw and "png" in formats and rendition.option("optimize", "png"):
        # Pillow's optimize means zlib level 9: an explicit level would be silently ignored.
        raise ProfileError(
            source, f"{path}.compress_level", raw["compress_level"], "nothing with optimize: true"
        )
    return rendition


def _format(raw: Any, source: str, path: str) -> str | tuple[str, ...]:
    """One format (as before lists existed), or a list of concrete ones without repeats; a
    list of one is that format. `same` stays single: in a list it could repeat another."""
    if not isinstance(raw, list):
        return read_choice(raw, OUTPUT_FORMATS, source, path)
    concrete = tuple(EXTENSIONS)
    for i, fmt in enumerate(require_list(raw, source, path, non_empty=True)):
        allowed = f"one of {', '.join(concrete)} (same only as the single format)"
        read_choice(fmt, concrete, source, f"{path}[{i}]", allowed)
        if fmt in raw[:i]:
            allowed = f"a format not already listed (at [{raw.index(fmt)}])"
            raise ProfileError(source, f"{path}[{i}]", fmt, allowed)
    return raw[0] if len(raw) == 1 else tuple(raw)


def _check_multi_format_key(template: str, source: str, path: str) -> None:
    """A multi-format rendition's keys differ only in their extension, and without it the
    template is the rendition's canonical key (the URL a CDN negotiates the format for)."""
    if not template.endswith(EXT_SUFFIX) or "ext" in template_fields(
        template.removesuffix(EXT_SUFFIX)
    ):
        allowed = (
            f"a template ending in '{EXT_SUFFIX}', with {{ext}} nowhere else, for a rendition "
            "in several formats: processed/{key}/{rendition}.{ext}"
        )
        raise ProfileError(source, path, template, allowed)


def canonical_template(rendition: Rendition) -> str | None:
    """A multi-format rendition's key template without its `.{ext}`: the key that names the
    rendition whatever the format. None for a single-format rendition."""
    if len(rendition.formats) < 2:
        return None
    return rendition.key.removesuffix(EXT_SUFFIX)


def _resize(raw: Any, source: str, path: str) -> Resize:
    require_mapping(raw, source, path, _RESIZE_KEYS)
    declared = specs(Resize)
    mode = read(declared["mode"], raw.get("mode"), source, f"{path}.mode")
    needs = MODE_SIZES[mode]
    for dimension in ("width", "height"):
        if dimension in needs and dimension not in raw:
            raise ProfileError(source, f"{path}.{dimension}", None, f"a size (mode {mode})")
        if dimension not in needs and dimension in raw:
            raise ProfileError(
                source, f"{path}.{dimension}", raw[dimension], f"nothing (mode {mode} sets {needs})"
            )
    values = read_fields(Resize, raw, source, path, {"mode": mode})
    for option, spec in declared.items():
        if spec.modes and values.get(option) is not None and mode not in spec.modes:
            allowed = f"nothing ({option} is for {', '.join(spec.modes)})"
            raise ProfileError(source, f"{path}.{option}", raw[option], allowed)
    return Resize(**values)


def _key_template(raw: Any, source: str, path: str, flatten_folders: bool) -> str:
    template = read_str(raw, source, path)
    allowed = _PLACEHOLDERS
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ProfileError(source, path, template, f"a template using {allowed} ({exc})") from None
    for _, field_name, spec, conversion in parsed:
        if field_name is not None and (field_name not in KEY_FIELDS or spec or conversion):
            raise ProfileError(source, path, template, f"only the placeholders {allowed}")
    fields = template_fields(template)
    if not template.startswith(OUTPUT_PREFIX):
        raise ProfileError(source, path, template, f"a key under '{OUTPUT_PREFIX}'")
    if not fields & _SOURCE_FIELDS:
        raise ProfileError(
            source, path, template, "a template naming the source: {key}, {path}, {name} or {stem}"
        )
    # photo.jpg and photo.png are different uploads; a template must keep them apart.
    if render_key(template, "a/photo.jpg", "x", "jpg", _SAMPLE_HASH) == render_key(
        template, "a/photo.png", "x", "jpg", _SAMPLE_HASH
    ):
        raise ProfileError(
            source, path, template, "a template that tells photo.jpg from photo.png: use {name}"
        )
    if not flatten_folders and not fields & _FOLDER_FIELDS:
        raise ProfileError(
            source,
            path,
            template,
            "a template keeping the folder ({key}, {dir} or {path}) so a/x.jpg and b/x.jpg "
            "do not collide, or flatten_folders: true to accept that",
        )
    return template


def _check_key_collisions(renditions: list[Rendition], source: str, path: str) -> None:
    """Two renditions of one profile must never write the same key for the same input.

    Tried on source keys of every shape the placeholders treat differently (folder or
    none, extension or none, dot-files, several dots) and on names made of the words a
    template can echo back (rendition names, extensions), where `{key}.{ext}` next to
    `{path}.{name}` meets for a file named `jpg`. Samples cannot prove every pair apart:
    the function also refuses, per image, renditions that come out at one key."""
    words = {r.name for r in renditions} | set(EXTENSIONS.values())
    samples = ["input/photo.jpg", "input/photo.png", "photo", "input/.hidden", "a.tar.gz"]
    samples += [f"{folder}{word}{tail}" for word in sorted(words)
                for folder in ("", "input/") for tail in ("", ".jpg", ".png")]  # fmt: skip
    for sample in samples:
        written: dict[str, int] = {}
        for i, rendition in enumerate(renditions):
            for key in _possible_keys(rendition, sample):
                if key in written and written[key] != i:
                    raise ProfileError(
                        source,
                        f"{path}[{i}].key",
                        rendition.key,
                        f"a key different from renditions[{written[key]}] (for the source "
                        f"key {sample!r} both give {key}; make {{rendition}} a folder level "
                        "of its own, as in processed/{key}/{rendition}.{ext})",
                    )
                written[key] = i


def _possible_keys(rendition: Rendition, sample: str) -> list[str]:
    """Every key the rendition may write for a sample source key, and its canonical key:
    the URL that names it must not be another rendition's object either."""
    formats = tuple(EXTENSIONS) if rendition.format == "same" else rendition.formats
    keys = [
        render_key(rendition.key, sample, rendition.name, EXTENSIONS[fmt], _SAMPLE_HASH)
        for fmt in formats
    ]
    canonical = canonical_template(rendition)
    if canonical is not None:
        keys.append(render_key(canonical, sample, rendition.name, "", _SAMPLE_HASH))
    return keys


EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
_SAMPLE_HASH = "0" * HASH_DIGITS


def template_fields(template: str) -> set[str]:
    """The placeholders a key template uses (it parses: it was validated)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def source_hash(data: bytes, profile: Profile) -> str:
    """The {hash} of a source as `profile` renders it: short, hex, from the source's bytes
    and the profile's content hash. The profile counts because a {hash} key is cached as
    immutable: after a profile edit and a reprocess, other bytes must get other keys."""
    import hashlib  # loads OpenSSL (~6 MB RSS): only for profiles whose keys use {hash}

    digest = hashlib.sha256(data)
    digest.update(profile.content_hash().encode())
    return digest.hexdigest()[:HASH_DIGITS]


def render_key(
    template: str, source_key: str, rendition: str, ext: str, content_hash: str | None = None
) -> str:
    """The output key for one rendition of one input key: deterministic, so retries overwrite.
    `content_hash` is the source's `source_hash`, required by a template that uses {hash}."""
    if content_hash is None and "hash" in template_fields(template):
        raise ValueError(f"the key template {template!r} needs the source's content hash")
    folder, _, name = source_key.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    path = f"{folder}/{stem}" if folder else stem
    return template.format(
        key=source_key,
        dir=f"{folder}/" if folder else "",
        name=name,
        stem=stem,
        path=path,
        ext=ext,
        rendition=rendition,
        hash=content_hash,
    )
