"""decode -> orient -> modes -> renditions -> encode, on generated images."""

from __future__ import annotations

import gc
import io
import weakref
from dataclasses import replace

import pytest
from PIL import Image, ImageChops, ImageStat

from lambda_pkg import decoding, imaging
from lambda_pkg.profiles import Profile, Rendition, Resize, load_named
from tests.support import images


def profile_of(*renditions: Rendition, **options) -> Profile:
    return Profile(name="t", renditions=renditions, **options)


def rendition(mode="fit", width=None, height=None, fmt="png", upscale=False, name="r"):
    return Rendition(
        name=name,
        resize=Resize(mode=mode, width=width, height=height, upscale=upscale),
        format=fmt,
        key="processed/{key}/{rendition}.{ext}",
        quality=90,
    )


def decode_output(output: imaging.Output) -> Image.Image:
    image = Image.open(io.BytesIO(output.data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("source", "resize", "expected"),
    [
        ((1920, 1080), Resize("width", width=200), (200, 113)),
        ((1080, 1920), Resize("width", width=200), (200, 356)),
        ((1920, 1080), Resize("height", height=100), (178, 100)),
        ((1920, 1080), Resize("fit", width=300, height=300), (300, 169)),
        ((1080, 1920), Resize("fit", width=300, height=300), (169, 300)),
        ((1920, 1080), Resize("cover", width=300, height=300), (300, 300)),
        ((100, 80), Resize("width", width=200), (100, 80)),
        ((100, 80), Resize("width", width=200, upscale=True), (200, 160)),
        ((100, 80), Resize("cover", width=200, height=200), (80, 80)),
        ((100, 80), Resize("cover", width=200, height=200, upscale=True), (200, 200)),
        ((5000, 3), Resize("width", width=200), (200, 1)),
    ],
)
def test_target_size(source, resize, expected):
    assert imaging.target_size(source, resize) == expected


def _orientation_marker(orientation: int) -> bytes:
    """A 60x40 JPEG whose top-left quarter is red once displayed upright."""
    upright = Image.new("RGB", (60, 40), "blue")
    upright.paste((255, 0, 0), (0, 0, 30, 20))
    # Store it the way a camera would for this orientation: the inverse transform.
    inverse = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }
    stored = upright
    for step in inverse.get(orientation, []):
        stored = stored.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return images.encode(stored, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", [0, 1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied(orientation):
    data = _orientation_marker(orientation)
    decoded, (output,) = imaging.process(data, profile_of(rendition("width", width=60)))
    assert decoded.original_size == (60, 40)
    assert decoded.orientation == (orientation if orientation else 1)
    image = decode_output(output).convert("RGB")
    assert image.size == (60, 40)
    red, green, blue = image.getpixel((5, 5))
    assert red > 200 and blue < 60, f"orientation {orientation}: top-left is {(red, green, blue)}"
    assert image.getpixel((50, 30))[2] > 200


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda: images.photo(120, 80).convert("RGBA"), "RGBA"),
        (lambda: images.photo(120, 80).convert("LA"), "LA"),
        (lambda: images.photo(120, 80).convert("CMYK"), "CMYK"),
        (lambda: images.photo(120, 80).convert("P"), "P"),
        (lambda: images.photo(120, 80).convert("1"), "1"),
        (lambda: images.photo(120, 80).convert("L"), "L"),
    ],
)
@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_every_mode_saves_in_every_format(make, mode, fmt):
    source = make()
    container = "TIFF" if mode == "CMYK" else "PNG"
    decoded, (output,) = imaging.process(
        images.encode(source, container), profile_of(rendition("width", width=60, fmt=fmt))
    )
    assert decoded.original_mode == mode
    image = decode_output(output)
    assert image.size == (60, 40)
    assert image.format == fmt.upper()


def test_palette_transparency_becomes_alpha_and_is_flattened_for_jpeg():
    # GIVEN a palette PNG whose index 0 is transparent, covering the left half
    image = Image.new("P", (80, 40), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, 40, 40))
    data = images.encode(image, "PNG", transparency=0)
    profile = profile_of(
        rendition("width", width=80, fmt="png", name="p"),
        rendition("width", width=80, fmt="jpeg", name="j"),
        background="#00ff00",
    )
    decoded, (png, jpeg) = imaging.process(data, profile)
    assert decoded.has_alpha
    assert decode_output(png).mode == "RGBA"
    assert decode_output(png).getpixel((10, 20))[3] == 0
    # THEN the JPEG shows the profile's background where it was transparent
    r, g, b = decode_output(jpeg).getpixel((10, 20))
    assert g > 200 and r < 60 and b < 60


def test_sixteen_bit_is_scaled_not_clipped():
    grey = images.photo(120, 80).convert("L")
    sixteen = grey.convert("I").point(lambda v: v * 257).convert("I;16")
    assert sixteen.getextrema()[1] > 255 * 200
    decoded, (output,) = imaging.process(
        images.encode(sixteen, "PNG"), profile_of(rendition("width", width=120))
    )
    assert decoded.original_mode == "I;16"
    result = decode_output(output).convert("L")
    difference = ImageStat.Stat(ImageChops.difference(result, grey)).mean[0]
    assert difference < 1.5  # clipping would make nearly every pixel 255


@pytest.mark.parametrize(("fmt", "expected"), [("PNG", "png"), ("JPEG", "jpeg"), ("GIF", "png")])
def test_same_keeps_the_input_family(fmt, expected):
    image = images.photo(60, 40)
    if fmt == "GIF":
        image = image.convert("P")
    _decoded, (output,) = imaging.process(
        images.encode(image, fmt), profile_of(rendition("width", width=30, fmt="same"))
    )
    assert output.format == expected


def test_disallowed_input_format_is_rejected():
    profile = profile_of(rendition("width", width=50), input_formats=("jpeg",))
    with pytest.raises(imaging.ImageRejected, match="allowed formats: jpeg"):
        imaging.process(images.png(100, 50), profile)


def test_jpeg_is_decoded_at_reduced_scale_for_small_renditions():
    data = images.jpeg(4000, 3000)
    decoded = imaging.decode(data, profile_of(rendition("width", width=200)))
    # 200 px with a 2x margin needs 400 px: libjpeg's 1/8 scale gives 500
    assert decoded.image.size == (500, 375)
    assert decoded.original_size == (4000, 3000)


def test_cover_crop_keeps_the_centre():
    image = Image.new("RGB", (300, 100), "blue")
    image.paste((255, 0, 0), (100, 0, 200, 100))
    _, (output,) = imaging.process(
        images.encode(image, "PNG"), profile_of(rendition("cover", width=50, height=50))
    )
    result = decode_output(output).convert("RGB")
    assert result.size == (50, 50)
    assert result.getpixel((2, 25))[0] > 200 and result.getpixel((47, 25))[0] > 200


@pytest.mark.slow
def test_renditions_cascade_but_match_a_direct_resize():
    data = images.jpeg(3000, 2000)
    widths = (1600, 800, 200)
    profile = profile_of(*(rendition("width", width=w, fmt="png", name=f"w{w}") for w in widths))
    _, outputs = imaging.process(data, profile)
    reference = Image.open(io.BytesIO(data)).convert("RGB")
    for output, width in zip(outputs, widths, strict=True):
        got = decode_output(output).convert("RGB")
        direct = reference.resize(got.size, Image.Resampling.LANCZOS)
        assert ImageStat.Stat(ImageChops.difference(got, direct)).mean[0] < 2.0, width


def test_profile_order_is_kept_in_outputs():
    profile = profile_of(
        rendition("width", width=100, name="small"),
        rendition("width", width=400, name="large"),
        replace(rendition("cover", width=50, height=50), name="square"),
    )
    _, outputs = imaging.process(images.jpeg(800, 600), profile)
    assert [o.rendition.name for o in outputs] == ["small", "large", "square"]
    assert [(o.width, o.height) for o in outputs] == [(100, 75), (400, 300), (50, 50)]


def test_one_list_of_steps_makes_stills_and_every_animation_frame(monkeypatch):
    # GIVEN an extra pixel step (a stand-in for a watermark) added in one place
    from lambda_pkg import steps

    seen: list[tuple[int, int]] = []

    def mark(image, picture, background, area):
        seen.append(picture.size)
        marked = image.copy()
        marked.putpixel((0, 0), (0, 0, 0, 255) if image.mode == "RGBA" else (0, 0, 0))
        return marked

    monkeypatch.setattr(steps, "STEPS", (*steps.STEPS, mark))
    still = profile_of(rendition("width", width=40, fmt="png"))
    animated = profile_of(rendition("width", width=30, fmt="webp"), keep_animation=True)

    # WHEN a still and a four-frame animation are rendered
    _, (png,) = imaging.process(images.png(80, 60), still)
    _, (webp,) = imaging.process(images.animation("GIF", frames=4), animated)

    # THEN the step ran on the still's picture and on each frame, and shows in the outputs
    assert seen == [(40, 30)] + [(30, 20)] * 4
    assert decode_output(png).convert("RGB").getpixel((0, 0)) == (0, 0, 0)
    frames = Image.open(io.BytesIO(webp.data))
    assert frames.n_frames == 4


def test_the_picture_as_stored_is_freed_before_the_render(monkeypatch):
    # GIVEN a sideways JPEG: orienting it makes a copy, so the stored decode is garbage
    stored: list[weakref.ref] = []
    read_header = decoding.read_header

    def remembering(data, profile):
        header = read_header(data, profile)
        stored.append(weakref.ref(header.image))
        return header

    seen_alive: list[bool] = []
    render_all = imaging.render_all

    def checking(decoded, plan, profile):
        gc.collect()
        seen_alive.append(stored[0]() is not None)
        return render_all(decoded, plan, profile)

    monkeypatch.setattr(decoding, "read_header", remembering)
    monkeypatch.setattr(imaging, "render_all", checking)
    # WHEN it is processed, THEN nothing holds the stored picture while renditions are made
    imaging.process(images.jpeg(640, 480, orientation=6), load_named("web"))
    assert seen_alive == [False]
