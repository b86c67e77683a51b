"""Resize rules, gravity, sharpen and encoder options, on generated images."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat

from lambda_pkg import gravity, imaging, transforms
from lambda_pkg.profiles import Profile, Rendition, Resize
from tests.support import images


def run(data: bytes, resize: Resize, fmt: str = "png", background="#ffffff", **options):
    rendition = Rendition("r", resize, fmt, "processed/{key}/{rendition}.{ext}", **options)
    _, (output,) = imaging.process(data, Profile("t", (rendition,), background=background))
    image = Image.open(io.BytesIO(output.data))
    image.load()
    return output, image


def stripes(size=(300, 100), at=(0, 100), colour=(255, 0, 0)) -> bytes:
    """A flat blue image with one busy red-and-white checkered band from x=at[0] to at[1]."""
    image = Image.new("RGB", size, (40, 60, 200))
    for x in range(at[0], at[1], 4):
        for y in range(0, size[1], 4):
            if (x // 4 + y // 4) % 2:
                image.paste(colour, (x, y, x + 4, y + 4))
            else:
                image.paste((255, 255, 255), (x, y, x + 4, y + 4))
    return images.encode(image, "PNG")


@pytest.mark.parametrize(
    ("resize", "size"),
    [
        (Resize("fit", width=100, height=100), (100, 50)),
        (Resize("width", width=50), (50, 25)),
        (Resize("height", height=50), (100, 50)),
        (Resize("cover", width=60, height=60), (60, 60)),
        (Resize("pad", width=100, height=100), (100, 100)),
        (Resize("width", width=400), (200, 100)),  # never upscale by default
        (Resize("width", width=400, upscale=True), (400, 200)),
        (
            Resize("pad", width=400, height=400),
            (400, 400),
        ),  # the box is exact, the image not upscaled
    ],
)
def test_resize_rules_give_exact_sizes(resize, size):
    output, image = run(images.png(200, 100), resize)
    assert image.size == size == (output.width, output.height)


def test_pad_centres_on_the_background_colour():
    _, image = run(images.png(200, 100), Resize("pad", width=100, height=100, background="#00ff00"))
    assert image.convert("RGB").getpixel((50, 5)) == (0, 255, 0)
    assert image.convert("RGB").getpixel((50, 95)) == (0, 255, 0)
    assert image.convert("RGB").getpixel((50, 50)) != (0, 255, 0)


def test_pad_uses_the_profile_background_by_default():
    _, image = run(images.png(200, 100), Resize("pad", width=100, height=100), background="#ff0000")
    assert image.convert("RGB").getpixel((50, 5)) == (255, 0, 0)


@pytest.mark.parametrize("where", ["left", "right", "center"])
def test_fixed_gravity_picks_the_side(where):
    _, image = run(stripes(), Resize("cover", width=60, height=60, gravity=where))
    pixel = image.convert("RGB").getpixel((30, 30))
    assert (pixel[0] > 150) == (where == "left")  # the busy band is red and white


@pytest.mark.parametrize("where", ["top", "bottom"])
def test_top_and_bottom_gravity(where):
    image = Image.new("RGB", (100, 300), "blue")
    image.paste((255, 0, 0), (0, 0, 100, 100))
    _, result = run(
        images.encode(image, "PNG"), Resize("cover", width=50, height=50, gravity=where)
    )
    red = result.convert("RGB").getpixel((25, 25))[0] > 200
    assert red == (where == "top")


@pytest.mark.parametrize("smart", ["entropy", "attention"])
@pytest.mark.parametrize("band", [(0, 100), (100, 200), (200, 300)])
def test_smart_gravity_keeps_the_busiest_region(smart, band):
    _, result = run(stripes(at=band), Resize("cover", width=60, height=60, gravity=smart))
    colours = {result.convert("RGB").getpixel((x, 30)) for x in (10, 30, 50)}
    assert all(c[0] > 150 for c in colours), (smart, band, colours)  # not the flat blue


def _two_patches(right: tuple[int, int, int]) -> Image.Image:
    """Grey, with a saturated cool patch on the left and a `right`-coloured one on the right."""
    image = Image.new("RGB", (300, 100), (176, 176, 176))
    image.paste((120, 172, 240), (20, 20, 80, 80))
    image.paste(right, (220, 20, 280, 80))
    return image


@pytest.mark.parametrize("tone", [(255, 220, 190), (224, 172, 140), (141, 85, 36), (60, 40, 30)])
def test_attention_is_drawn_to_skin_tones(tone):
    box = gravity.crop_box(_two_patches(tone), (100.0, 100.0), "attention")
    assert box[0] == 200  # the skin patch, over the more saturated cool one


@pytest.mark.parametrize("colour", [(140, 224, 172), (172, 140, 224)])
def test_attention_without_skin_keeps_the_more_salient_patch(colour):
    # Same saturation as the (224, 172, 140) skin tone, other hues: the skin cue made the
    # difference above.
    box = gravity.crop_box(_two_patches(colour), (100.0, 100.0), "attention")
    assert box[0] == 0


def test_smart_gravity_on_a_portrait_slides_vertically():
    image = Image.open(io.BytesIO(stripes(at=(200, 300)))).transpose(Image.Transpose.ROTATE_90)
    box = gravity.crop_box(image, (100.0, 100.0), "entropy")
    assert box[0] == 0 and box[1] < 10  # rotated 90: the band is now at the top


def test_sharpen_adds_contrast_after_downscale():
    data = images.png(400, 200)
    _, plain = run(data, Resize("width", width=100))
    _, sharp = run(data, Resize("width", width=100), sharpen=150)
    edges = [
        ImageStat.Stat(i.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0]
        for i in (plain, sharp)
    ]
    assert edges[1] > edges[0] * 1.05


def test_strip_resize_matches_a_single_pass():
    source = images.photo(900, 700)
    target = (300, 233)
    single = source.resize(target, Image.Resampling.LANCZOS, reducing_gap=transforms.REDUCING_GAP)
    split = transforms.fit(source, target)
    assert (
        ImageChops.difference(single, split).getbbox() is None
        or max(ImageStat.Stat(ImageChops.difference(single, split)).extrema[c][1] for c in range(3))
        <= 1
    )


def test_kernel_option_picks_the_resampling_filter():
    data = images.jpeg(800, 600)
    lanczos = run(data, Resize("width", width=200))[1].convert("RGB")
    for kernel, pillow in (
        ("bicubic", Image.Resampling.BICUBIC),
        ("bilinear", Image.Resampling.BILINEAR),
    ):
        got = run(data, Resize("width", width=200, kernel=kernel))[1].convert("RGB")
        decoded = Image.open(io.BytesIO(data)).convert("RGB")
        assert got.tobytes() != lanczos.tobytes(), kernel
        # Close to that kernel applied to a full decode (the DCT-scaled draft adds a little).
        direct = decoded.resize(got.size, pillow)
        assert ImageStat.Stat(ImageChops.difference(got, direct)).mean[0] < 2.0, kernel


def test_nearest_kernel_keeps_pixel_art_colours():
    art = Image.new("RGB", (64, 64), (255, 0, 0))
    for x in range(0, 64, 8):
        for y in range(0, 64, 8):
            if (x + y) // 8 % 2:
                art.paste((0, 0, 255), (x, y, x + 8, y + 8))
    data = images.encode(art, "PNG")
    _, smooth = run(data, Resize("width", width=24))
    _, blocky = run(data, Resize("width", width=24, kernel="nearest"))
    assert {c for _, c in blocky.convert("RGB").getcolors()} == {(255, 0, 0), (0, 0, 255)}
    assert len(smooth.convert("RGB").getcolors(4096)) > 2


def test_a_rendition_cascades_only_from_its_own_kernel():
    data = images.png(1200, 600)
    nearest = Rendition(
        "big", Resize("width", width=600, kernel="nearest"), "png", "processed/{stem}-b.png"
    )
    small = Rendition("small", Resize("width", width=100), "png", "processed/{stem}-s.png")
    _, outputs = imaging.process(data, Profile("t", (nearest, small)))
    alone = imaging.process(data, Profile("t", (small,)))[1][0]
    assert outputs[1].data == alone.data


def test_transforms_do_not_mutate_their_input():
    source = images.photo(200, 100)
    before = source.tobytes()
    transforms.cover(source, (50, 50), "attention")
    transforms.pad(source, (100, 50), (100, 100), "#000000")
    assert source.tobytes() == before


# -- encoder options ----------------------------------------------------------------------


def test_jpeg_options_reach_the_encoder():
    data = images.jpeg(400, 300)
    _, progressive = run(
        data, Resize("width", width=200), "jpeg", progressive=True, subsampling="4:4:4"
    )
    _, baseline = run(data, Resize("width", width=200), "jpeg")
    assert progressive.info.get("progressive") or progressive.info.get("progression")
    assert not baseline.info.get("progressive")
    from PIL import JpegImagePlugin

    assert JpegImagePlugin.get_sampling(progressive) == 0  # 4:4:4
    assert JpegImagePlugin.get_sampling(baseline) == 2  # 4:2:0


def test_jpeg_quality_changes_size():
    data = images.jpeg(400, 300)
    low, _ = run(data, Resize("width", width=300), "jpeg", quality=30)
    high, _ = run(data, Resize("width", width=300), "jpeg", quality=95)
    assert len(low.data) < len(high.data)


def test_png_compress_level_without_optimize():
    data = images.png(300, 200)
    fast, image = run(data, Resize("width", width=300), "png", optimize=False, compress_level=0)
    small, _ = run(data, Resize("width", width=300), "png", optimize=False, compress_level=9)
    assert len(fast.data) > len(small.data)
    assert image.format == "PNG"


def test_webp_lossless_is_exact():
    source = images.photo(120, 80)
    _, image = run(images.encode(source, "PNG"), Resize("width", width=120), "webp", lossless=True)
    assert ImageChops.difference(image.convert("RGB"), source).getbbox() is None


# Each pair differs in one option only, whose other value is Pillow's own default where
# that matters: an option dropped on its way to the encoder makes the two outputs identical.
@pytest.mark.parametrize(
    ("fmt", "smaller", "larger"),
    [
        ("webp", {"quality": 30}, {"quality": 95}),
        ("avif", {"quality": 30}, {"quality": 95}),
        ("webp", {"method": 6}, {"method": 0}),  # slower method, better compression
        ("avif", {"speed": 6}, {"speed": 10}),  # slower speed, better compression
        ("jpeg", {"optimize": True}, {"optimize": False}),  # optimised Huffman tables
        ("png", {"optimize": True}, {"optimize": False, "compress_level": 6}),
    ],
)
def test_encoder_options_reach_the_encoder(fmt, smaller, larger):
    data = images.png(240, 160)
    small, small_image = run(data, Resize("width", width=240), fmt, **smaller)
    large, large_image = run(data, Resize("width", width=240), fmt, **larger)
    assert small_image.format == large_image.format == fmt.upper()
    assert len(small.data) < len(large.data), (fmt, smaller, len(small.data), larger)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (lambda: images.jpeg(60, 40), "jpeg"),
        (lambda: images.png(60, 40), "png"),
        (lambda: images.png(60, 40, "RGBA"), "png"),
        (lambda: images.encode(images.photo(60, 40), "TIFF"), "jpeg"),
        (lambda: images.encode(images.photo(60, 40, "RGBA"), "TIFF"), "png"),
        (lambda: images.heic(60, 40), "jpeg"),
    ],
)
def test_same_keeps_the_family(data, expected):
    output, _ = run(data(), Resize("width", width=30), "same")
    assert output.format == expected


def _half_transparent(fmt: str) -> bytes:
    image = images.photo(60, 40).convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 30, 40))
    return images.encode(image, fmt)


@pytest.mark.parametrize("fmt", ["webp", "avif"])
@pytest.mark.parametrize("alpha", [False, True])
def test_same_keeps_webp_and_avif_and_their_alpha(fmt, alpha):
    # encoding.output_format maps WebP and AVIF to themselves, since both hold photos and
    # alpha; only GIF, TIFF, BMP and HEIC inputs are turned into PNG or JPEG.
    pillow = fmt.upper()
    data = _half_transparent(pillow) if alpha else images.encode(images.photo(60, 40), pillow)
    output, image = run(data, Resize("width", width=30), "same")
    assert (output.format, image.format) == (fmt, pillow)
    assert output.content_type == f"image/{fmt}"
    if alpha:
        rgba = image.convert("RGBA")
        assert rgba.getpixel((3, 10))[3] < 10 and rgba.getpixel((25, 10))[3] > 245
