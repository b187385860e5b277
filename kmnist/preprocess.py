"""The one way any image becomes model input: dataset arrays, uploads, canvas drawings, CLI files.

Drawings are framed like the dataset: cropped to the ink, scaled so the longer side matches the
training characters, stroke width matched, and placed by centre of mass where the training
characters sit. The framing is measured on the training images and saved with each run.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from kmnist import KmnistError

SIZE = 28
INK = 0.2  # intensity (0..1) above which a pixel counts as ink
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # larger uploads are refused with a message
MAX_SIDE = 4096  # larger pictures are refused before decoding (decompression bombs)
MAX_PIXELS = MAX_SIDE * MAX_SIDE


class EmptyImageError(KmnistError, ValueError):
    """The image holds no ink, so there is nothing to recognise."""


class BadImageError(KmnistError, ValueError):
    """The file is not a readable image, or too large to read."""


@dataclass(frozen=True)
class Framing:
    box: float  # median longer side of the ink bounding box, in pixels of the 28x28 frame
    com_y: float  # mean centre-of-mass row
    com_x: float  # mean centre-of-mass column
    stroke: float  # median stroke thickness, in pixels

    def to_json(self) -> dict:
        return asdict(self)


# Measured by measure_framing on the 6,000 kmnist6k training images; runs save their own.
DEFAULT_FRAMING = Framing(box=28.0, com_y=13.55, com_x=13.34, stroke=2.79)


def to_input(images: np.ndarray) -> np.ndarray:
    """Model input from uint8 images (N, 28, 28) or one (28, 28): float32 (N, 28, 28, 1), 0..255.

    The model rescales to [0, 1] itself, so a saved model needs nothing else to run.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    return x.reshape(-1, SIZE, SIZE, 1)


def stroke_thickness(ink: np.ndarray) -> float:
    """Typical stroke width of a binary ink mask: area over half the boundary length."""
    ink = ink.astype(bool)
    area = ink.sum()
    if area == 0:
        return 0.0
    boundary = (ink & ~ndimage.binary_erosion(ink)).sum()
    return float(2.0 * area / max(boundary, 1))


def measure_framing(images: np.ndarray, limit: int = 2000, seed: int = 0) -> Framing:
    """How characters sit in the 28x28 box of a training set."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(images))[:limit]
    sides, coms, strokes = [], [], []
    for img in images[pick].astype(np.float32) / 255.0:
        ink = img > INK
        if not ink.any():
            continue
        ys, xs = np.nonzero(ink)
        sides.append(max(np.ptp(ys), np.ptp(xs)) + 1)
        coms.append(ndimage.center_of_mass(img))
        strokes.append(stroke_thickness(img > 0.5))
    coms = np.array(coms)
    return Framing(box=float(np.median(sides)), com_y=float(coms[:, 0].mean()),
                   com_x=float(coms[:, 1].mean()), stroke=float(np.median(strokes)))


def read_file(path: str | Path, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """A file's bytes, reading at most limit + 1 of them: /dev/zero or a huge file is refused, not loaded."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadImageError(f"the file is larger than the {limit / 1e6:.0f} MB limit")
    return data


def read_image(data: bytes | str | Path) -> np.ndarray:
    """Decode PNG/JPG bytes or a file into float32 grayscale (H, W) in 0..1, transparency as paper."""
    if isinstance(data, (str, Path)):
        data = read_file(data)
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadImageError(f"the image is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
    too_large = f"the limit is {MAX_SIDE}x{MAX_SIDE} pixels"
    try:
        with warnings.catch_warnings():  # Pillow warns below its own bomb limit; ours is lower and says so
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise BadImageError(f"the image is too large: {img.width}x{img.height} pixels; {too_large}")
        img.load()
    except Image.DecompressionBombError as e:  # so large that Pillow refuses to even describe it
        raise BadImageError(f"the image is too large ({e}); {too_large}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:  # SyntaxError: Pillow's word for a broken header
        raise BadImageError("the file is not a readable PNG or JPEG image") from e
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale to 0..1, not clip to 8 bits
        return np.asarray(img, dtype=np.float32) / 65535.0
    return to_gray(np.asarray(img.convert("RGBA")))


def to_gray(image: np.ndarray) -> np.ndarray:
    """float32 grayscale 0..1 from gray, RGB or RGBA arrays (uint8 or float); transparent areas become white paper."""
    x = np.asarray(image, dtype=np.float32)
    if x.max(initial=0) > 1.0:
        x = x / 255.0
    if x.ndim == 2:
        return x
    if x.shape[-1] == 4:
        alpha = x[..., 3:4]
        x = x[..., :3] * alpha + (1.0 - alpha)  # composite over white paper
    return x[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink as high values, whichever the polarity: the border's median tells paper from ink."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if np.median(border) > 0.5 else gray


def is_dataset_style(gray: np.ndarray) -> bool:
    """A 28x28 image with light ink on dark is already framed like the dataset."""
    return gray.shape == (SIZE, SIZE) and np.median(ink_map(gray)) == np.median(gray)


def frame(ink: np.ndarray, framing: Framing = DEFAULT_FRAMING) -> np.ndarray:
    """A uint8 28x28 dataset-style image from an ink map of any size."""
    ink = np.clip(ink, 0.0, 1.0)
    mask = ink > INK
    if mask.sum() < 3:
        raise EmptyImageError("the image holds no ink")
    ys, xs = np.nonzero(mask)
    crop = ink[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    scale = framing.box / max(crop.shape)
    # Match stroke width at full resolution, where a one-pixel change is fine-grained.
    target = framing.stroke / scale
    grow = int(round((target - stroke_thickness(crop > 0.5)) / 2))
    if grow:
        crop = np.pad(crop, abs(grow))
        op = ndimage.grey_dilation if grow > 0 else ndimage.grey_erosion
        crop = op(crop, footprint=_disk(abs(grow)))
    scale = framing.box / max(crop.shape)
    h, w = (max(1, round(s * scale)) for s in crop.shape)
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS),
                       dtype=np.float32) / 255.0
    small = np.clip(small, 0, 1)
    if small.max() > 0:
        small = small / small.max()
    # Place by centre of mass on a larger canvas, then cut the 28x28 frame.
    pad = SIZE
    canvas = np.zeros((SIZE + 2 * pad, SIZE + 2 * pad), np.float32)
    cy, cx = ndimage.center_of_mass(small)
    top = int(round(pad + framing.com_y - cy))
    left = int(round(pad + framing.com_x - cx))
    # Keep the whole character in the frame: centring moves it only within the slack it has.
    top = min(max(top, pad), pad + max(SIZE - h, 0))
    left = min(max(left, pad), pad + max(SIZE - w, 0))
    canvas[top: top + h, left: left + w] = small
    out = canvas[pad: pad + SIZE, pad: pad + SIZE]
    return (out * 255).round().astype(np.uint8)


def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r: r + 1, -r: r + 1]
    return x * x + y * y <= r * r


def prepare(image: np.ndarray | bytes | str | Path, framing: Framing = DEFAULT_FRAMING) -> np.ndarray:
    """Any picture of one character (array, PNG/JPG bytes or path) as a uint8 28x28 dataset-style image."""
    gray = read_image(image) if isinstance(image, (bytes, str, Path)) else to_gray(image)
    if is_dataset_style(gray):
        if (gray > INK).sum() < 3:
            raise EmptyImageError("the image holds no ink")
        return (gray * 255).round().astype(np.uint8)
    return frame(ink_map(gray), framing)
