"""Images generated in code for the tests: nothing is downloaded."""

from __future__ import annotations

from imgpipe_samples import encode, exif_with_orientation, photo

__all__ = ["encode", "jpeg", "photo", "png", "png_claiming"]


def jpeg(width: int, height: int, orientation: int | None = None, **params: object) -> bytes:
    image = photo(width, height)
    if orientation is not None:
        params["exif"] = exif_with_orientation(orientation)
    return encode(image, "JPEG", quality=90, **params)


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    return encode(photo(width, height, mode), "PNG")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims any size: a decompression bomb with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def png16_rgb(width: int, height: int) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one): the red ramp spans 0..65535."""
    import struct
    import zlib

    rows = []
    for _y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            red = x * 65535 // max(1, width - 1)
            row += struct.pack(">HHH", red, 65535 - red, 32768)
        rows.append(bytes(row))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    body = zlib.compress(b"".join(rows))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def animation(fmt: str, frames: int = 4, size: tuple[int, int] = (60, 40)) -> bytes:
    """Frames of solid red, green, blue, ...: a frame's colour says which frame it is."""
    from PIL import Image

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colours[i % 4]) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=80, loop=0)


def heic(width: int, height: int, **params: object) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(photo(width, height), "HEIF", quality=90, **params)


def swapped_primaries_icc() -> bytes:
    """An RGB matrix/TRC ICC profile whose red and green primaries are sRGB's green and red:
    pixels (255, 0, 0) in it are sRGB green. Built by hand; ImageCms cannot make one."""
    import struct

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(2.2 * 256)) + b"\0\0"
    srgb_red, srgb_green, srgb_blue = (
        (0.4361, 0.2225, 0.0139),
        (0.3851, 0.7169, 0.0971),
        (
            0.1431,
            0.0606,
            0.7141,
        ),
    )
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(*srgb_green)),
        (b"gXYZ", xyz(*srgb_red)),
        (b"bXYZ", xyz(*srgb_blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000)
    header += b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24
    header += struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def camera_jpeg(
    width: int,
    height: int,
    orientation: int,
    latitude: tuple[float, float, float],
    longitude: tuple[float, float, float],
) -> bytes:
    """A phone-style JPEG: EXIF orientation, a GPS position (north, west) and an embedded
    sRGB ICC profile, the three things an item records about an upload."""
    from PIL import Image, ImageCms

    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: latitude, 3: "W", 4: longitude})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(photo(width, height), "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc)


def ycck_jpeg(patches: list[tuple[int, int, int, int]], side: int = 32) -> bytes:
    """A YCCK JPEG (Adobe APP14 transform 2), as Photoshop writes CMYK: one `side`-pixel
    square of each CMYK colour, left to right.

    Pillow writes CMYK JPEGs only untransformed (APP14 transform 0), each channel stored
    inverted (Adobe's convention). libjpeg's YCCK is that inverted CMYK's C, M, Y turned to
    YCbCr with K untouched, so the stored channels must be YCbCr of Pillow's own C, M, Y
    plus the inverted K: handing Pillow the inverse of that makes it store exactly those,
    and setting the APP14 transform byte to 2 tells decoders to convert back.
    """
    from PIL import Image

    cmyk = Image.new("CMYK", (side * len(patches), side))
    for index, colour in enumerate(patches):
        cmyk.paste(colour, (index * side, 0, (index + 1) * side, side))
    cyan, magenta, yellow, black = cmyk.split()
    ycc = Image.merge("RGB", (cyan, magenta, yellow)).convert("YCbCr")
    stored = [band.point(lambda v: 255 - v) for band in ycc.split()]
    data = bytearray(encode(Image.merge("CMYK", (*stored, black)), "JPEG", quality=95))
    # APP14: marker, 2-byte length, "Adobe", version, flags0, flags1, then the transform.
    at = data.find(b"\xff\xee")
    if at < 0 or data[at + 4 : at + 9] != b"Adobe" or data[at + 15] != 0:
        raise AssertionError("Pillow no longer writes an untransformed Adobe CMYK JPEG")
    data[at + 15] = 2
    return bytes(data)
