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
