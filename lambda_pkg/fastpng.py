"""PNG pixels through libspng (pyspng-seunglab) where its result is Pillow's, byte for byte.

Pillow's PNG decoder unfilters rows in plain C and inflates with the system zlib: for a
12 MP photo it alone took longer than libvips' whole thumbnail. libspng, with its own
inflate and row unfiltering, decodes the same pixels in about half the time (x86_64, one
core; the inflate is half its time, the unfiltering a third).

It stands in for Pillow only where both give the same picture and the same metadata:
8-bit grey, RGB or RGBA (Pillow's L, RGB, RGBA), without tRNS (Pillow keeps it in `info`,
libspng would ignore it; a palette, 16 bits, LA stay Pillow's too), not an APNG, and with
nothing after the pixel data but IDAT and IEND, so the `info` Pillow read when it opened the
file is all there is (eXIf or XMP stored after the pixels is read by Pillow's decode only).
Any error libspng reports hands the bytes back to Pillow, whose verdict stands as before.
pyspng (and numpy under it) is never imported at cold start: by the budget's child as it
starts (preload), else on the first PNG decoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

from PIL import Image

from lambda_pkg import headers

# IHDR colour type -> Pillow's mode for it at 8 bits a sample.
_MODES = {0: "L", 2: "RGB", 6: "RGBA"}
# Chunks whose meaning libspng's plain decode leaves out: transparency, animation.
_PILLOW_ONLY = {b"tRNS", b"acTL", b"fcTL", b"fdAT"}


@dataclass(frozen=True)
class Pixels:
    """A PNG libspng can decode for Pillow, and the mode it decodes to."""

    data: bytes
    mode: str

    def decode(self) -> Image.Image | None:
        """The picture, or None when libspng is missing or refuses the bytes."""
        pyspng = _binding()
        if pyspng is None:
            return None
        # RGB comes as RGBA (alpha 255): Pillow stores RGB in 4 bytes a pixel, so the array
        # is mapped as it is, where 3-byte rows would be copied (both alive at the peak).
        try:
            array = pyspng.load(self.data, "RGBA" if self.mode == "RGB" else self.mode)
        except Exception:
            return None  # Pillow decodes it and says what is wrong, exactly as before
        size = (array.shape[1], array.shape[0])
        if self.mode != "RGB":
            return Image.frombuffer(self.mode, size, array, "raw", self.mode, 0, 1)
        core = Image.core.map_buffer(array, size, "raw", 0, ("RGB", 0, 1))
        return Image.new("RGB", (0, 0))._new(core)


def pixels(data: bytes) -> Pixels | None:
    """The PNG as libspng's to decode, or None when Pillow must (see the module's doc).
    The chunk walk is bounded: costs.check_container counted the chunks first."""
    mode = _MODES.get(data[25]) if len(data) > 28 and data[24] == 8 else None
    if mode is None or data[12:16] != b"IHDR":
        return None
    after_pixels = False
    for _, _, kind in headers.png_chunk_spans(data):
        if kind in _PILLOW_ONLY or (after_pixels and kind not in (b"IDAT", b"IEND")):
            return None
        after_pixels = after_pixels or kind == b"IDAT"
    return Pixels(data, mode)


def preload() -> None:
    """Import pyspng now: the budget's child does as it starts (isolated.new_worker), before
    any call's RLIMIT_AS. numpy maps 80-120 MB of address space as it loads, which within a
    call would come out of that image's budget for as long as the child lives, and its
    OpenBLAS spins for good when an allocation fails there (with 60 and 100 MB to spare)."""
    _binding()


def _binding() -> ModuleType | None:
    # Nothing here calls BLAS: one thread, not a pool of idle ones and their stacks.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        import pyspng  # in the layer; numpy under it takes ~0.1 s to import
    except ImportError:
        return None
    return pyspng
