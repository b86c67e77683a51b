"""THE processing-profile schema: load, validate, serialise.

Both the Pulumi program (at `pulumi preview`) and the handler (from PROFILE_CONFIG) go
through `profile_from_dict`, so a profile that would fail at upload fails at deploy.
Pure standard library except PyYAML, imported only when a YAML file is read: the
function gets its profiles as JSON and does not ship PyYAML.
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTPUT_PREFIX = "processed/"
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"

OUTPUT_FORMATS = ("jpeg", "png", "webp", "avif", "same")
INPUT_FORMATS = ("jpeg", "png", "gif", "webp", "tiff", "bmp", "avif", "heic")
RESIZE_MODES = ("fit", "width", "height", "cover", "pad")
# Where a cover crop sits: fixed edges, or "smart" (entropy: most detail; attention: edges,
# saturation and skin-like colours, in the spirit of libvips' smartcrop).
GRAVITIES = ("center", "top", "bottom", "left", "right", "entropy", "attention")
# The resampling kernel of a rendition's final resize pass. lanczos (3 lobes) is what
# libvips and sharp default to; bicubic costs ~40% less for a shrink and, under a JPEG
# encode, differs from it by far less than the encode's own error; nearest is for pixel art.
KERNELS = ("lanczos", "bicubic", "bilinear", "nearest")
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
ICC_MODES = ("strip", "embed")
# Encoder options and the concrete formats each applies to; `same` may become any of them.
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    "quality": ("jpeg", "webp", "avif"),
    "progressive": ("jpeg",),
    "subsampling": ("jpeg",),
    "optimize": ("jpeg", "png"),
    "compress_level": ("png",),
    "lossless": ("webp",),
    "method": ("webp",),
    "speed": ("avif",),
}
MAX_SHARPEN = 500  # UnsharpMask percent
MAX_FRAMES = 1000
KEY_FIELDS = ("key", "dir", "name", "stem", "path", "ext", "rendition")
_SOURCE_FIELDS = frozenset({"key", "name", "stem", "path"})
_FOLDER_FIELDS = frozenset({"key", "dir", "path"})
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_DIMENSION = 16384


class ProfileError(ValueError):
    """A profile is invalid. The message names file, field path, bad value, what is allowed."""

    def __init__(self, source: str, path: str, value: Any, allowed: str) -> None:
        self.source, self.path, self.value, self.allowed = source, path, value, allowed
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: got {value!r}; allowed: {allowed}")


@dataclass(frozen=True)
class Resize:
    mode: str
    width: int | None = None
    height: int | None = None
    upscale: bool = False
    gravity: str = "center"  # cover only
    background: str | None = None  # pad only; None = the profile's background
    kernel: str = "lanczos"


@dataclass(frozen=True)
class Rendition:
    name: str
    resize: Resize
    format: str
    key: str
    quality: int = 85
    progressive: bool = False
    subsampling: str = "4:2:0"
    optimize: bool = True
    compress_level: int = 6
    lossless: bool = False
    method: int = 4
    speed: int = 8
    sharpen: int = 0  # UnsharpMask percent after a downscale; 0 = off


@dataclass(frozen=True)
class Profile:
    name: str
    renditions: tuple[Rendition, ...]
    description: str = ""
    max_pixels: int = 50_000_000
    max_bytes: int = 50 * 1024 * 1024
    input_formats: tuple[str, ...] = INPUT_FORMATS
    background: str = "#ffffff"
    flatten_folders: bool = False
    keep_metadata: bool = False  # EXIF, XMP and GPS are stripped unless this opts in
    icc: str = "strip"  # after conversion to sRGB: embed the sRGB profile, or strip it
    keep_animation: bool = False  # animated GIF/WebP/APNG stay animated in webp/same outputs
    max_frames: int = 100  # frames kept when keep_animation; frames*pixels <= max_pixels

    def to_dict(self) -> dict[str, Any]:
        data = _without_defaults(asdict(self), _PROFILE_OPTION_DEFAULTS)
        data["input_formats"] = list(self.input_formats)
        data["renditions"] = [_rendition_dict(r) for r in self.renditions]
        return data

    def content_hash(self) -> str:
        """Stable hash of what the profile produces; stored in each item for `reprocess`."""
        import hashlib  # loads OpenSSL (~6 MB RSS): only when an item is written

        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _rendition_dict(rendition: Rendition) -> dict[str, Any]:
    """The rendition as the YAML would spell it: unset sizes and png's quality left out."""
    data = _without_defaults(asdict(rendition), _RENDITION_OPTION_DEFAULTS)
    data["resize"] = {
        k: v
        for k, v in _without_defaults(data["resize"], _RESIZE_OPTION_DEFAULTS).items()
        if v is not None
    }
    if rendition.format == "png":
        del data["quality"]
    return data


def _defaults(cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    fields_by_name = {f.name: f.default for f in dataclasses.fields(cls)}
    return {name: fields_by_name[name] for name in names}


# Options added after the seed are left out of the serialised form while at their default:
# PROFILE_CONFIG shares Lambda's 4 KB environment, and unchanged profiles keep their hash.
_PROFILE_OPTION_DEFAULTS = _defaults(
    Profile, ("keep_metadata", "icc", "keep_animation", "max_frames")
)
_RENDITION_OPTION_DEFAULTS = _defaults(
    Rendition,
    (
        "progressive",
        "subsampling",
        "optimize",
        "compress_level",
        "lossless",
        "method",
        "speed",
        "sharpen",
    ),
)
_RESIZE_OPTION_DEFAULTS = _defaults(Resize, ("gravity", "kernel"))


def _without_defaults(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in defaults or defaults[k] != v}


@dataclass(frozen=True)
class Route:
    """Keys starting with `prefix` and ending with `suffix` go to profile `profile`."""

    profile: str
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


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
        _require_mapping(data, source, "", {"profiles", "routes"})
        raw_profiles = _require_list(data.get("profiles"), source, "profiles", non_empty=True)
        profiles = tuple(
            profile_from_dict(p, source, path=f"profiles[{i}]") for i, p in enumerate(raw_profiles)
        )
        names = [p.name for p in profiles]
        routes = []
        for i, raw in enumerate(_require_list(data.get("routes"), source, "routes", True)):
            where = f"routes[{i}]"
            _require_mapping(raw, source, where, {"profile", "prefix", "suffix"})
            name = raw.get("profile")
            if name not in names:
                raise ProfileError(source, f"{where}.profile", name, f"one of {', '.join(names)}")
            routes.append(
                Route(
                    profile=name,
                    prefix=_str(raw.get("prefix", ""), source, f"{where}.prefix"),
                    suffix=_str(raw.get("suffix", ""), source, f"{where}.suffix"),
                )
            )
        return cls(profiles=profiles, routes=tuple(routes))


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

_PROFILE_KEYS = {
    "name",
    "description",
    "max_pixels",
    "max_bytes",
    "input_formats",
    "background",
    "flatten_folders",
    "renditions",
    "keep_metadata",
    "icc",
    "keep_animation",
    "max_frames",
}
_RENDITION_KEYS = {"name", "resize", "format", "key", "sharpen", *FORMAT_OPTIONS}
_RESIZE_KEYS = {"mode", "width", "height", "upscale", "gravity", "background", "kernel"}


def profile_from_dict(
    data: Any, source: str, path: str = "", default_name: str | None = None
) -> Profile:
    """Validate a parsed profile. Every problem is a ProfileError naming where it is."""

    def at(name: str) -> str:
        return f"{path}.{name}" if path else name

    _require_mapping(data, source, path, _PROFILE_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ProfileError(source, at("name"), name, "lower-case letters, digits, '-' and '_'")
    defaults = Profile(name=name, renditions=())
    formats = _require_list(
        data.get("input_formats", list(INPUT_FORMATS)), source, at("input_formats"), True
    )
    for i, fmt in enumerate(formats):
        _choice(fmt, INPUT_FORMATS, source, f"{at('input_formats')}[{i}]")
    background = data.get("background", defaults.background)
    if not isinstance(background, str) or not _COLOUR_RE.match(background):
        raise ProfileError(source, at("background"), background, "a colour like '#ffffff'")
    flatten = _bool(data.get("flatten_folders", False), source, at("flatten_folders"))

    raw_renditions = _require_list(data.get("renditions"), source, at("renditions"), True)
    renditions: list[Rendition] = []
    for i, raw in enumerate(raw_renditions):
        rendition = _rendition(raw, source, f"{at('renditions')}[{i}]", flatten)
        for j, earlier in enumerate(renditions):
            if earlier.name == rendition.name:
                raise ProfileError(
                    source,
                    f"{at('renditions')}[{i}].name",
                    rendition.name,
                    f"a name not already used by renditions[{j}]",
                )
        renditions.append(rendition)
    _check_key_collisions(renditions, source, at("renditions"))

    return Profile(
        name=name,
        renditions=tuple(renditions),
        description=_str(data.get("description", ""), source, at("description")),
        max_pixels=_int(data.get("max_pixels", defaults.max_pixels), source, at("max_pixels"), 1),
        max_bytes=_int(data.get("max_bytes", defaults.max_bytes), source, at("max_bytes"), 1),
        input_formats=tuple(dict.fromkeys(formats)),
        background=background.lower(),
        flatten_folders=flatten,
        keep_metadata=_bool(data.get("keep_metadata", False), source, at("keep_metadata")),
        icc=_choice(data.get("icc", defaults.icc), ICC_MODES, source, at("icc")),
        keep_animation=_bool(data.get("keep_animation", False), source, at("keep_animation")),
        max_frames=_int(
            data.get("max_frames", defaults.max_frames), source, at("max_frames"), 1, MAX_FRAMES
        ),
    )


def _rendition(raw: Any, source: str, path: str, flatten_folders: bool) -> Rendition:
    _require_mapping(raw, source, path, _RENDITION_KEYS)
    for required in ("name", "resize", "format", "key"):
        if required not in raw:
            raise ProfileError(source, f"{path}.{required}", None, "a value (it is required)")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ProfileError(source, f"{path}.name", name, "lower-case letters, digits, '-' and '_'")
    fmt = _choice(raw["format"], OUTPUT_FORMATS, source, f"{path}.format")
    for option, formats in FORMAT_OPTIONS.items():
        if option in raw and fmt != "same" and fmt not in formats:
            raise ProfileError(
                source,
                f"{path}.{option}",
                raw[option],
                f"no {option} for {fmt} (it applies to {', '.join(formats)})",
            )
    d = Rendition(name=name, resize=Resize("fit"), format=fmt, key="")
    optimize = _bool(raw.get("optimize", d.optimize), source, f"{path}.optimize")
    if "compress_level" in raw and optimize and fmt == "png":
        # Pillow's optimize means zlib level 9: an explicit level would be silently ignored.
        raise ProfileError(
            source, f"{path}.compress_level", raw["compress_level"], "nothing with optimize: true"
        )
    key = _key_template(raw["key"], source, f"{path}.key", flatten_folders)
    return Rendition(
        name=name,
        resize=_resize(raw["resize"], source, f"{path}.resize"),
        format=fmt,
        key=key,
        quality=_int(raw.get("quality", d.quality), source, f"{path}.quality", 1, 100),
        progressive=_bool(raw.get("progressive", d.progressive), source, f"{path}.progressive"),
        subsampling=_choice(
            raw.get("subsampling", d.subsampling), SUBSAMPLINGS, source, f"{path}.subsampling"
        ),
        optimize=optimize,
        compress_level=_int(
            raw.get("compress_level", d.compress_level), source, f"{path}.compress_level", 0, 9
        ),
        lossless=_bool(raw.get("lossless", d.lossless), source, f"{path}.lossless"),
        method=_int(raw.get("method", d.method), source, f"{path}.method", 0, 6),
        speed=_int(raw.get("speed", d.speed), source, f"{path}.speed", 0, 10),
        sharpen=_int(raw.get("sharpen", d.sharpen), source, f"{path}.sharpen", 0, MAX_SHARPEN),
    )


def _resize(raw: Any, source: str, path: str) -> Resize:
    _require_mapping(raw, source, path, _RESIZE_KEYS)
    mode = _choice(raw.get("mode"), RESIZE_MODES, source, f"{path}.mode")
    box = ("width", "height")
    needs = {"fit": box, "cover": box, "pad": box}.get(mode, (mode,))
    for dimension in ("width", "height"):
        if dimension in needs and dimension not in raw:
            raise ProfileError(source, f"{path}.{dimension}", None, f"a size (mode {mode})")
        if dimension not in needs and dimension in raw:
            raise ProfileError(
                source, f"{path}.{dimension}", raw[dimension], f"nothing (mode {mode} sets {needs})"
            )
    upscale = _bool(raw.get("upscale", False), source, f"{path}.upscale")
    gravity = _choice(raw.get("gravity", "center"), GRAVITIES, source, f"{path}.gravity")
    if "gravity" in raw and mode != "cover":
        raise ProfileError(source, f"{path}.gravity", gravity, "nothing (gravity is for cover)")
    background = raw.get("background")
    if background is not None:
        if mode != "pad":
            raise ProfileError(
                source, f"{path}.background", background, "nothing (background is for pad)"
            )
        if not isinstance(background, str) or not _COLOUR_RE.match(background):
            raise ProfileError(source, f"{path}.background", background, "a colour like '#ffffff'")
        background = background.lower()

    def size(name: str) -> int | None:
        if name not in raw:
            return None
        return _int(raw[name], source, f"{path}.{name}", 1, MAX_DIMENSION)

    return Resize(
        mode=mode,
        width=size("width"),
        height=size("height"),
        upscale=upscale,
        gravity=gravity,
        background=background,
        kernel=_choice(raw.get("kernel", "lanczos"), KERNELS, source, f"{path}.kernel"),
    )


def _key_template(raw: Any, source: str, path: str, flatten_folders: bool) -> str:
    template = _str(raw, source, path)
    allowed = ", ".join("{" + f + "}" for f in KEY_FIELDS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ProfileError(source, path, template, f"a template using {allowed} ({exc})") from None
    fields = set()
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in KEY_FIELDS or spec or conversion:
            raise ProfileError(source, path, template, f"only the placeholders {allowed}")
        fields.add(field_name)
    if not template.startswith(OUTPUT_PREFIX):
        raise ProfileError(source, path, template, f"a key under '{OUTPUT_PREFIX}'")
    if not fields & _SOURCE_FIELDS:
        raise ProfileError(
            source, path, template, "a template naming the source: {key}, {path}, {name} or {stem}"
        )
    # photo.jpg and photo.png are different uploads; a template must keep them apart.
    if render_key(template, "a/photo.jpg", "x", "jpg") == render_key(
        template, "a/photo.png", "x", "jpg"
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
            for ext in _possible_extensions(rendition.format):
                key = render_key(rendition.key, sample, rendition.name, ext)
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


def _possible_extensions(fmt: str) -> tuple[str, ...]:
    if fmt == "same":
        return tuple(EXTENSIONS.values())
    return (EXTENSIONS[fmt],)


EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}


def render_key(template: str, source_key: str, rendition: str, ext: str) -> str:
    """The output key for one rendition of one input key: deterministic, so retries overwrite."""
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
    )


# -- small typed readers ------------------------------------------------------------------


def _require_mapping(value: Any, source: str, path: str, allowed_keys: set[str]) -> None:
    if not isinstance(value, Mapping):
        raise ProfileError(source, path or "(top level)", value, "a mapping of keys to values")
    for key in value:
        if key not in allowed_keys:
            where = f"{path}.{key}" if path else str(key)
            raise ProfileError(
                source, where, key, f"one of the keys {', '.join(sorted(allowed_keys))}"
            )


def _require_list(value: Any, source: str, path: str, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or (non_empty and not value):
        raise ProfileError(source, path, value, "a non-empty list" if non_empty else "a list")
    return value


def _bool(value: Any, source: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(source, path, value, "true or false")
    return value


def _choice(value: Any, choices: tuple[str, ...], source: str, path: str) -> str:
    if value not in choices:
        raise ProfileError(source, path, value, f"one of {', '.join(choices)}")
    return value


def _str(value: Any, source: str, path: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(source, path, value, "a string")
    return value


def _int(value: Any, source: str, path: str, low: int, high: int | None = None) -> int:
    # bool is an int in Python; `width: true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        limit = f"a whole number >= {low}" + (f" and <= {high}" if high else "")
        raise ProfileError(source, path, value, limit)
    if high is not None and value > high:
        raise ProfileError(source, path, value, f"a whole number from {low} to {high}")
    return value
