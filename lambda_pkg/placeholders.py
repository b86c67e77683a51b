"""What a site shows before the image loads: a BlurHash string and the dominant colour.

Both are computed from a tiny copy of the smallest rendition, so they cost well under a
millisecond of pixel work. The BlurHash encoder follows the reference algorithm
(github.com/woltapp/blurhash) in pure Python: the Lambda layer ships no numpy.
"""

from __future__ import annotations

import math
from operator import mul

from PIL import Image

# BlurHash is at most 4 cosine components a side: 16 px is four samples per period of the
# finest one, all they can show, and the pure-Python projection costs per pixel.
SAMPLE = 16
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_TO_LINEAR = [
    v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    for v in (i / 255 for i in range(256))
]


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - i) % 83] for i in range(1, length + 1))


def _to_srgb(value: float) -> int:
    value = max(0.0, min(1.0, value))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _quantise_ac(value: float, maximum: float) -> int:
    scaled = math.copysign(abs(value / maximum) ** 0.5, value)
    return int(max(0.0, min(18.0, math.floor(scaled * 9 + 9.5))))


def sample(image: Image.Image, background: str = "#ffffff") -> Image.Image:
    """A small opaque RGB copy: transparent areas show the background they will be shown on."""
    scale = min(1.0, SAMPLE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image if size == image.size else image.resize(size, Image.Resampling.BOX)
    if small.mode in ("RGBA", "LA"):
        base = Image.new("RGB", small.size, background)
        base.paste(small, mask=small.getchannel("A"))
        return base
    return small.convert("RGB")


def blurhash(image: Image.Image, components_x: int = 4, components_y: int = 3) -> str:
    """The BlurHash of an RGB image (pass `sample(...)`: cost grows with its pixels)."""
    width, height = image.size
    pixels = image.convert("RGB").tobytes()
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(components_x)]
    cos_y = [
        [math.cos(math.pi * j * y / height) for y in range(height)] for j in range(components_y)
    ]
    # Separable: project every row onto the x cosines (projected[i][c][y]), then those
    # columns onto the y cosines. sum(map(mul, ...)) keeps the inner loops in C.
    linear = [_TO_LINEAR[v] for v in pixels]
    projected = [[[0.0] * height for _ in range(3)] for _ in range(components_x)]
    for y in range(height):
        row = linear[y * width * 3 : (y + 1) * width * 3]
        channels = (row[0::3], row[1::3], row[2::3])
        for i, cx in enumerate(cos_x):
            for c in range(3):
                projected[i][c][y] = sum(map(mul, cx, channels[c]))
    components = []
    for j in range(components_y):
        for i in range(components_x):
            norm = (1.0 if i == j == 0 else 2.0) / (width * height)
            components.append(
                tuple(norm * sum(map(mul, cos_y[j], projected[i][c])) for c in range(3))
            )
    dc, ac = components[0], components[1:]
    largest = max((abs(v) for component in ac for v in component), default=0.0)
    quant_max = int(max(0, min(82, math.floor(largest * 166 - 0.5))))
    maximum = (quant_max + 1) / 166
    parts = [
        _base83((components_x - 1) + (components_y - 1) * 9, 1),
        _base83(quant_max, 1),
        _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4),
    ]
    for r, g, b in ac:
        value = _quantise_ac(r, maximum) * 361 + _quantise_ac(g, maximum) * 19
        parts.append(_base83(value + _quantise_ac(b, maximum), 2))
    return "".join(parts)


def dominant_color(image: Image.Image) -> str:
    """'#rrggbb' of the most common of a few median-cut colours (not the muddy average)."""
    quantised = image.convert("RGB").quantize(colors=5, method=Image.Quantize.MEDIANCUT)
    palette = quantised.getpalette() or []
    _count, index = max(quantised.getcolors() or [(1, 0)])
    r, g, b = palette[index * 3 : index * 3 + 3] or (0, 0, 0)
    return f"#{r:02x}{g:02x}{b:02x}"


def placeholders(image: Image.Image, background: str = "#ffffff") -> tuple[str, str]:
    """(blurhash, dominant colour) for a rendition, oriented so the long side gets 4 parts."""
    small = sample(image, background)
    x, y = (4, 3) if small.width >= small.height else (3, 4)
    return blurhash(small, x, y), dominant_color(small)
