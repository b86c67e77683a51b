"""Every input kind, recognised from the bytes; colour and metadata on the way through."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from lambda_pkg import formats, imaging
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images


def profile_of(*renditions: Rendition, **options) -> Profile:
    return Profile(name="t", renditions=renditions, **options)


def rendition(fmt="png", width=30, name="r", **options) -> Rendition:
    return Rendition(
        name=name,
        resize=Resize("width", width=width),
        format=fmt,
        key="processed/{key}/{rendition}.{ext}",
        **options,
    )


def opened(output: imaging.Output) -> Image.Image:
    image = Image.open(io.BytesIO(output.data))
    image.load()
    return image


def _mpo() -> bytes:
    first, second = (
        images.photo(120, 80),
        images.photo(120, 80).transpose(Image.Transpose.ROTATE_180),
    )
    return images.encode(first, "MPO", save_all=True, append_images=[second])


def _palette_with_transparency() -> bytes:
    image = images.photo(120, 80).convert("P")
    return images.encode(image, "PNG", transparency=0)


INPUTS = {
    "jpeg baseline": (lambda: images.jpeg(120, 80), "jpeg", "RGB"),
    "jpeg progressive": (lambda: images.jpeg(120, 80, progressive=True), "jpeg", "RGB"),
    "jpeg cmyk": (lambda: images.encode(images.photo(120, 80, "CMYK"), "JPEG"), "jpeg", "CMYK"),
    "mpo": (_mpo, "jpeg", "RGB"),
    "png 8-bit": (lambda: images.png(120, 80), "png", "RGB"),
    "png 16-bit grey": (
        lambda: images.encode(
            images.photo(120, 80, "L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"
        ),
        "png",
        "I;16",
    ),
    "png 16-bit rgb": (lambda: images.png16_rgb(120, 80), "png", "RGB"),
    "png palette+transparency": (_palette_with_transparency, "png", "P"),
    "png la": (lambda: images.png(120, 80, "LA"), "png", "LA"),
    "gif": (lambda: images.encode(images.photo(120, 80).convert("P"), "GIF"), "gif", "P"),
    "webp": (lambda: images.encode(images.photo(120, 80), "WEBP"), "webp", "RGB"),
    "tiff": (lambda: images.encode(images.photo(120, 80), "TIFF"), "tiff", "RGB"),
    "bmp": (lambda: images.encode(images.photo(120, 80), "BMP"), "bmp", "RGB"),
    "avif": (lambda: images.encode(images.photo(120, 80), "AVIF"), "avif", "RGB"),
    "heic": (lambda: images.heic(120, 80), "heic", "RGB"),
    "apng": (lambda: images.animation("PNG"), "png", "RGB"),
    "animated gif": (lambda: images.animation("GIF"), "gif", "P"),
    "animated webp": (lambda: images.animation("WEBP"), "webp", "RGB"),
}


@pytest.mark.parametrize("kind", INPUTS)
def test_every_input_kind_is_recognised_from_its_bytes_and_rendered(kind):
    make, expected_format, mode = INPUTS[kind]
    decoded, (output,) = imaging.process(make(), profile_of(rendition("png", width=60)))
    assert decoded.input_format == expected_format
    assert decoded.original_mode == mode
    width, height = decoded.original_size
    assert width in (60, 120) and height * 3 == width * 2
    result = opened(output)
    assert (result.format, result.size) == ("PNG", (60, 40))
    reference = images.photo(120, 80).resize((60, 40), Image.Resampling.LANCZOS)
    if mode in ("LA", "I;16"):
        reference = reference.convert("L").convert("RGB")
    if "animated" not in kind and kind not in ("apng", "png 16-bit rgb", "png 16-bit grey"):
        # golden comparison with a tolerance: the picture survives each decoder
        diff = ImageStat.Stat(ImageChops.difference(result.convert("RGB"), reference)).mean
        limit = 30 if kind in ("gif", "png palette+transparency") else 8
        assert max(diff) < limit, (kind, diff)


def test_ycck_jpeg_decodes_to_the_right_colours():
    # GIVEN a YCCK JPEG (Photoshop's CMYK): cyan, magenta, yellow, 80% black, a mixed ink, paper
    patches = [
        (255, 0, 0, 0),
        (0, 255, 0, 0),
        (0, 0, 255, 0),
        (0, 0, 0, 204),
        (40, 120, 200, 30),
        (0, 0, 0, 0),
    ]
    data = images.ycck_jpeg(patches)
    source = Image.open(io.BytesIO(data))
    assert (source.mode, source.info.get("adobe_transform")) == ("CMYK", 2)
    # WHEN it goes through the pipeline: a DCT-scaled decode, then resized to 8-pixel patches
    decoded, (output,) = imaging.process(data, profile_of(rendition(width=48)))
    assert (decoded.input_format, decoded.original_mode) == ("jpeg", "CMYK")
    # THEN each patch has the colour its inks make (Pillow's CMYK -> RGB), within JPEG's
    # error. Read as plain CMYK, or with the YCC left unconverted, every patch is far off.
    result = opened(output).convert("RGB")
    assert result.size == (48, 8)
    for index, cmyk in enumerate(patches):
        expected = Image.new("CMYK", (1, 1), cmyk).convert("RGB").getpixel((0, 0))
        got = result.getpixel((index * 8 + 4, 4))
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 8, (
            cmyk,
            got,
            expected,
        )


def test_heic_is_only_registered_for_heif_bytes():
    assert formats.looks_like_heif(images.heic(16, 16))
    assert not formats.looks_like_heif(images.encode(images.photo(16, 16), "AVIF"))
    assert not formats.looks_like_heif(images.jpeg(16, 16))


def test_a_profile_may_restrict_the_input_formats():
    profile = profile_of(rendition(), input_formats=("jpeg", "png"))
    with pytest.raises(imaging.ImageRejected, match="allowed formats: jpeg, png"):
        imaging.process(images.heic(60, 40), profile)
    with pytest.raises(imaging.ImageRejected):
        imaging.process(images.encode(images.photo(60, 40), "WEBP"), profile)


def test_sixteen_bit_rgb_is_scaled_not_clipped():
    _, (output,) = imaging.process(images.png16_rgb(64, 4), profile_of(rendition(width=64)))
    row = [opened(output).convert("RGB").getpixel((x, 1)) for x in (0, 32, 63)]
    assert row[0][0] < 5 and 120 < row[1][0] < 136 and row[2][0] > 250
    assert 120 < row[1][2] < 136  # 32768 -> 128, not 255


@pytest.mark.parametrize("fmt", ["png", "webp"])  # both could hold an animation
@pytest.mark.parametrize("source", ["GIF", "WEBP", "PNG"])
def test_first_frame_by_default(source, fmt):
    decoded, (output,) = imaging.process(images.animation(source), profile_of(rendition(fmt)))
    assert decoded.frame_count == 4 and decoded.animation is None
    assert not output.animated
    result = opened(output)
    assert not getattr(result, "is_animated", False) and getattr(result, "n_frames", 1) == 1
    # Frame 0 is red, the others green, blue and yellow; lossy WebP shifts a solid colour a
    # little, so a tolerance, but no other frame comes near red.
    r, g, b = result.convert("RGB").getpixel((5, 5))
    assert r > 230 and g < 25 and b < 25, (source, fmt, (r, g, b))


@pytest.mark.parametrize(
    ("source", "fmt", "expected"),
    [
        ("GIF", "webp", "webp"),
        ("WEBP", "webp", "webp"),
        ("GIF", "same", "gif"),
        ("PNG", "same", "png"),
    ],
)
def test_keep_animation_keeps_frames_and_timing(source, fmt, expected):
    profile = profile_of(rendition(fmt), keep_animation=True)
    _, (output,) = imaging.process(images.animation(source), profile)
    assert output.format == expected and output.animated
    result = opened(output)
    assert result.n_frames == 4 and result.size == (30, 20)
    result.seek(2)
    assert result.convert("RGB").getpixel((5, 5))[2] > 200  # third frame is blue
    assert result.info.get("duration") == 80


def test_keep_animation_caps_frames_and_still_gives_jpeg_a_first_frame():
    profile = profile_of(
        rendition("webp", name="a"), rendition("jpeg", name="j"), keep_animation=True, max_frames=2
    )
    _, (animated, still) = imaging.process(images.animation("GIF", frames=4), profile)
    assert opened(animated).n_frames == 2
    assert still.format == "jpeg" and not still.animated


def test_an_animation_in_several_formats_is_resized_once_for_all_of_them(monkeypatch):
    # GIVEN a kept animation and one rendition as animated WebP, animated PNG and a JPEG
    made = []
    real = imaging.steps.make
    monkeypatch.setattr(imaging.steps, "make", lambda *a, **k: made.append(1) or real(*a, **k))
    profile = profile_of(rendition(("webp", "png", "jpeg")), keep_animation=True)
    # WHEN rendered
    _, outputs = imaging.process(images.animation("GIF", frames=4), profile)
    # THEN the frames are resized once, and every format gets them
    assert len(made) == 4
    assert [(o.format, o.animated) for o in outputs] == [
        ("webp", True),
        ("png", True),
        ("jpeg", False),
    ]
    assert [getattr(opened(o), "n_frames", 1) for o in outputs] == [4, 4, 1]


def test_animation_frames_times_pixels_count_against_the_limit():
    profile = profile_of(rendition("webp"), keep_animation=True, max_pixels=60 * 40 * 3)
    with pytest.raises(imaging.ImageRejected, match="4 frames of 60x40"):
        imaging.process(images.animation("GIF", frames=4), profile)


def test_icc_profile_is_converted_to_srgb_and_recorded():
    data = images.encode(
        Image.new("RGB", (40, 40), (255, 0, 0)), "PNG", icc_profile=images.swapped_primaries_icc()
    )
    decoded, (output,) = imaging.process(data, profile_of(rendition(width=20)))
    assert decoded.has_icc
    r, g, b = opened(output).convert("RGB").getpixel((10, 10))
    assert g > 200 and r < 60, (r, g, b)  # the profile's red is sRGB green
    assert "icc_profile" not in opened(output).info  # stripped by default


def test_icc_embed_puts_the_srgb_profile_in_outputs():
    data = images.encode(images.photo(40, 40), "JPEG", icc_profile=images.swapped_primaries_icc())
    _, outputs = imaging.process(
        data, profile_of(rendition("jpeg", name="j"), rendition("webp", name="w"), icc="embed")
    )
    for output in outputs:
        icc = opened(output).info.get("icc_profile")
        assert icc and (b"sRGB" in icc or b"s\x00R\x00G\x00B" in icc)


_GPS_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _with_gps_and_xmp() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x0112] = 6
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    exif.get_ifd(0x8825)[1] = "N"
    return images.encode(images.photo(40, 60), "JPEG", exif=exif.tobytes(), xmp=_GPS_XMP)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_exif_xmp_and_gps_are_stripped_by_default(fmt):
    decoded, (output,) = imaging.process(_with_gps_and_xmp(), profile_of(rendition(fmt)))
    assert decoded.had_gps and decoded.orientation == 6
    result = opened(output)
    assert not result.getexif()
    assert not result.info.get("xmp") and "XML:com.adobe.xmp" not in result.info


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png", "avif"])
def test_keep_metadata_carries_exif_with_orientation_reset(fmt):
    profile = profile_of(rendition(fmt), keep_metadata=True)
    _, (output,) = imaging.process(_with_gps_and_xmp(), profile)
    result = opened(output)
    assert result.size == (30, 20)  # stored 40x60 with orientation 6: upright it is landscape
    exif = result.getexif()
    assert exif[0x010F] == "CameraMaker"
    assert exif.get_ifd(0x8825) == {1: "N", 2: (48.0, 51.0, 30.0)}  # the profile opted in
    if fmt == "avif":
        # Pillow's AVIF writer moves an EXIF orientation into irot/imir boxes (and its reader
        # moves them back): with 1 there is nothing to move and no tag left. Absent means
        # upright, the same as 1; a 6 here would make viewers turn the upright pixels again.
        assert exif.get(0x0112, 1) == 1
    else:
        assert exif.get(0x0112) == 1  # already applied to the pixels
    assert result.info.get("xmp") == _GPS_XMP
    if fmt == "png":
        # PNG carries XMP in an iTXt chunk under this keyword; the `xmp` above is Pillow's
        # copy of it.
        assert result.info.get("XML:com.adobe.xmp") == _GPS_XMP.decode()


_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description %s</rdf:RDF></x:xmpmeta>'


@pytest.mark.parametrize(
    ("stated", "reset"),
    [
        (b'tiff:Orientation="6"/>', b'tiff:Orientation="1"/>'),
        (
            b"><tiff:Orientation> 6 </tiff:Orientation></rdf:Description>",
            b"><tiff:Orientation>1</tiff:Orientation></rdf:Description>",
        ),
    ],
)
def test_keep_metadata_resets_the_xmp_orientation_too(stated, reset):
    data = images.jpeg(40, 60, orientation=6, xmp=_XMP % stated)
    profile = profile_of(rendition("jpeg"), keep_metadata=True)
    decoded, (output,) = imaging.process(data, profile)
    assert decoded.orientation == 6 and output.width > output.height
    # A viewer that reads either copy of the orientation leaves the upright pixels alone.
    assert opened(output).info["xmp"] == _XMP % reset
    assert opened(output).getexif().get(0x0112) == 1


def test_an_xmp_only_orientation_is_applied_and_reset():
    data = images.jpeg(40, 60, xmp=_XMP % b'tiff:Orientation="8"/>')
    profile = profile_of(rendition("jpeg"), keep_metadata=True)
    decoded, (output,) = imaging.process(data, profile)
    assert decoded.orientation == 8 and output.width > output.height
    assert opened(output).info["xmp"] == _XMP % b'tiff:Orientation="1"/>'


def test_no_gps_is_recorded_as_no_gps():
    decoded, _ = imaging.process(images.jpeg(40, 30, orientation=1), profile_of(rendition()))
    assert decoded.had_gps is False and decoded.has_icc is False


@pytest.mark.parametrize("data", [b"GIF89a" + b"\0" * 20, images.jpeg(60, 40)[:300], b"hello"])
def test_truncated_or_fake_images_are_rejected(data):
    with pytest.raises(imaging.ImageRejected):
        imaging.process(data, profile_of(rendition()))
