"""The offline demo: scikit-learn's handwritten digits (shipped inside the package) as images."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Iterator

import numpy as np

from labeling.formats import RawRow

DEMO_PROJECT = "Digits demo"
DIGIT_LABELS = [{"name": str(d), "hotkey": str(d)} for d in range(10)]


def png_data_uri(pixels: np.ndarray) -> str:
    """Encode a 2-D uint8 array as a grayscale PNG ``data:`` URI (no imaging library needed)."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].astype(np.uint8).tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def digit_rows(*, with_labels: bool = False, limit: int | None = None) -> Iterator[RawRow]:
    """Rows in the import format: an image, the 64 pixel features, the true label if asked."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target) if limit is None else min(limit, len(digits.target))
    for i in range(n):
        # Pixels are 0..16 with ink high: invert and scale to 0..255 for a dark digit on white.
        image = 255 - (digits.images[i] * (255 / 16)).round().astype(np.uint8)
        record = {
            "external_id": f"digit-{i:04d}",
            "image": png_data_uri(image),
            "features": digits.data[i].tolist(),
        }
        if with_labels:
            record["label"] = str(int(digits.target[i]))
        yield RawRow(i + 1, record)
