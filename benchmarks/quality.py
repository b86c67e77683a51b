"""Quality per rendition: each approach's delivered bytes against one ideal reference.

The reference is the full-resolution decode (Pillow, no draft, RGB) resized in float32
with LANCZOS straight to the rendition's size: no DCT scaling, no intermediate 8-bit
rounding, no cascade. A cover rendition's reference is made from the centred box of the
output's aspect ratio, the crop every approach is asked for. An output of another size than
ours gets its own reference at its own size, so nobody is scored against a misfit.

PSNR is over the three RGB channels against the unrounded float reference. SSIM is on
luma (BT.601 weights) with the 11-tap Gaussian window, sigma 1.5, and the constants of
Wang et al. 2004, over the valid region, averaged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass(frozen=True)
class Score:
    psnr: float
    ssim: float


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit scale arrays of one shape."""
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def _gaussian(sigma: float = 1.5, taps: int = 11) -> np.ndarray:
    x = np.arange(taps) - taps // 2
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' convolution: shifted sums, fine for thumbnail-sized planes."""
    taps = len(kernel)
    rows = sum(k * plane[:, i : plane.shape[1] - taps + 1 + i] for i, k in enumerate(kernel))
    return sum(k * rows[i : rows.shape[0] - taps + 1 + i, :] for i, k in enumerate(kernel))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma planes (8-bit scale), Gaussian window; needs 11x11 or more."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    g = _gaussian()
    mu_a, mu_b = _blur(a, g), _blur(b, g)
    var_a = _blur(a * a, g) - mu_a**2
    var_b = _blur(b * b, g) - mu_b**2
    cov = _blur(a * b, g) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    return float(np.mean(num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))))


def score(image: np.ndarray, reference: np.ndarray) -> Score:
    """RGB PSNR and luma SSIM of an HxWx3 image against an HxWx3 float reference."""
    return Score(psnr(image, reference), ssim(image @ LUMA, reference @ LUMA))


def cover_box(width: int, height: int, size: tuple[int, int]) -> tuple[float, ...]:
    """The centred box of `size`'s aspect ratio inside a width x height picture."""
    aspect = size[0] / size[1]
    if width / height > aspect:
        cut = (width - height * aspect) / 2
        return (cut, 0.0, width - cut, float(height))
    cut = (height - width / aspect) / 2
    return (0.0, cut, float(width), height - cut)


class Reference:
    """The float full decode of one input, and its LANCZOS resizes made on demand."""

    def __init__(self, data: bytes) -> None:
        full = Image.open(io.BytesIO(data)).convert("RGB")
        self.size = full.size
        # Mode "F" resizes in float32: no rounding to 8 bits until the score.
        self.channels = [channel.convert("F") for channel in full.split()]
        self._made: dict[tuple[tuple[int, int], bool], np.ndarray] = {}

    def at(self, size: tuple[int, int], cover: bool) -> np.ndarray:
        if (size, cover) not in self._made:
            box = cover_box(*self.size, size) if cover else None
            planes = [
                np.asarray(c.resize(size, Image.Resampling.LANCZOS, box=box)) for c in self.channels
            ]
            self._made[(size, cover)] = np.stack(planes, axis=-1)
        return self._made[(size, cover)]


def decode(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"), dtype=np.float64)


def score_outputs(reference: Reference, outputs: list[bytes], renditions: Any) -> list[Score]:
    """One Score per delivered output, in rendition order."""
    scores = []
    for encoded, rendition in zip(outputs, renditions, strict=True):
        image = decode(encoded)
        size = (image.shape[1], image.shape[0])
        scores.append(score(image, reference.at(size, rendition.resize.mode == "cover")))
    return scores
