"""Uploaded image bytes -> an MNIST-style float32 [H, W] array in 0..255 for a model's image input.

MNIST digits are white on black, their bounding box scaled to 20x20 inside a 28x28 frame and
centred by centre of mass. A photo or a drawing is usually dark ink on a light background,
fills the frame and sits anywhere, so it is normalised the same way before the model sees it:

1. decode with Pillow (EXIF orientation applied, transparency composited on white), grayscale
   with Pillow's integer ITU-R 601-2 weights;
2. invert when the border is light (median of the 1-pixel outer ring above mid-grey);
3. stretch so the background (that median) is 0 and the brightest ink is 255 (grey paper, pale pencil);
4. crop to the bounding box of the ink (pixels >= INK_THRESHOLD after the stretch);
5. resample the crop with an area-average (box) filter so its longest side is 20/28 of the
   target's, keeping the aspect ratio;
6. paste it into the H x W frame so its centre of mass lands on the frame's centre.

``service/static/app.js`` (``preprocess``) implements exactly these steps in the browser, so the
page's in-browser prediction matches the service's; a change here must be made there too. The
resampling is written out as weight matrices rather than ``Image.resize`` so JavaScript can
reproduce it value for value.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Decompression-bomb guard: a few KiB of PNG can declare gigapixels. 36 MP covers phone cameras;
# the check runs on the header, before any pixel is decoded.
MAX_PIXELS = 36_000_000
# Share of the target's side the digit's longest side gets (MNIST: 20 of 28 pixels).
DIGIT_FRACTION = 20 / 28
# After the stretch to 0..255, a pixel at or above this is ink (about 20 %: above JPEG noise and paper grain).
INK_THRESHOLD = 51.0
# Less contrast than this between background and brightest pixel: a blank image, which gives all zeros.
MIN_CONTRAST = 16.0


class ImageError(ValueError):
    """The bytes are not a usable image; the message says why and what is expected."""


def preprocess_image(data: bytes, height: int, width: int) -> np.ndarray:
    """Decode ``data`` (PNG, JPEG or any format Pillow reads) into float32 [height, width], 0..255, MNIST style."""
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    gray = decode_grayscale(data)
    return normalise_digit(gray, height, width)


def decode_grayscale(data: bytes) -> np.ndarray:
    """Decode to float32 [h, w] grayscale 0..255; raise ImageError for empty, corrupt, non-image or huge data."""
    if not data:
        raise ImageError("empty upload: expected the bytes of a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error like ours.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"image is {width}x{height} = {width * height} pixels; at most {MAX_PIXELS} are accepted"
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                return np.asarray(_to_grayscale(upright), dtype=np.float32)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"image dimensions are too large (decompression bomb guard): {e}") from e
    except UnidentifiedImageError as e:
        raise ImageError(
            f"not a recognised image ({len(data)} bytes): expected PNG, JPEG or another format Pillow reads"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports truncated or corrupt pixel data as OSError/SyntaxError/ValueError.
        raise ImageError(f"corrupt or truncated image data: {e}") from e


def _to_grayscale(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        # Transparent pixels are paper, not ink: composite on white like a browser page would.
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16/32-bit grayscale: scale the full range to 0..255 rather than clipping.
        array = np.asarray(image, dtype=np.float64)
        top = float(array.max()) or 1.0
        return Image.fromarray(np.clip(array * (255.0 / top), 0, 255).astype(np.uint8), mode="L")
    return image.convert("L")


def normalise_digit(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """Steps 2-6 of the module docstring on a grayscale array; all zeros for a blank image."""
    a = _white_on_black(np.asarray(gray, dtype=np.float32))
    if a is None:
        return np.zeros((height, width), dtype=np.float32)
    digit = _resample_to_box(_crop_to_ink(a), height, width)
    return _place_by_centre_of_mass(digit, height, width)


def _white_on_black(a: np.ndarray) -> np.ndarray | None:
    """Steps 2-3: invert a light background, stretch background..brightest to 0..255; None if blank."""
    background = _border_median(a)
    if background > 127.5:
        a = 255.0 - a
        background = 255.0 - background
    top = float(a.max())
    if top - background < MIN_CONTRAST:
        return None
    return np.clip((a - np.float32(background)) * np.float32(255.0 / (top - background)), 0.0, 255.0)


def _crop_to_ink(a: np.ndarray) -> np.ndarray:
    """Step 4: the bounding box of the pixels at or above INK_THRESHOLD (there is one after the stretch)."""
    ink = a >= INK_THRESHOLD
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resample_to_box(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 5: area-average so the longest side is DIGIT_FRACTION of the frame's, aspect kept."""
    h, w = a.shape
    scale = min(height * DIGIT_FRACTION / h, width * DIGIT_FRACTION / w)
    new_h = max(1, min(height, _round_half_up(h * scale)))
    new_w = max(1, min(width, _round_half_up(w * scale)))
    return _box_weights(h, new_h) @ a @ _box_weights(w, new_w).T


def _place_by_centre_of_mass(digit: np.ndarray, height: int, width: int) -> np.ndarray:
    """Step 6: paste into the frame with the centre of mass on the centre pixel, never pushing ink out."""
    out = np.zeros((height, width), dtype=np.float32)
    mass = float(digit.sum())
    if mass <= 0.0:
        return out
    h, w = digit.shape
    cy = float((digit.sum(axis=1) * np.arange(h)).sum()) / mass
    cx = float((digit.sum(axis=0) * np.arange(w)).sum()) / mass
    top = min(max(_round_half_up((height - 1) / 2 - cy), 0), height - h)
    left = min(max(_round_half_up((width - 1) / 2 - cx), 0), width - w)
    out[top : top + h, left : left + w] = digit
    return np.clip(out, 0.0, 255.0)


def _border_median(a: np.ndarray) -> float:
    """Median of the 1-pixel outer ring (each pixel once): the background level."""
    if a.shape[0] <= 2 or a.shape[1] <= 2:
        return float(np.median(a))
    ring = np.concatenate([a[0, :], a[-1, :], a[1:-1, 0], a[1:-1, -1]])
    return float(np.median(ring))


def _box_weights(size_in: int, size_out: int) -> np.ndarray:
    """[size_out, size_in] area-average weights: output pixel i covers input span [i*s, (i+1)*s), s = in/out."""
    step = size_in / size_out
    weights = np.zeros((size_out, size_in), dtype=np.float32)
    for i in range(size_out):
        start, end = i * step, (i + 1) * step
        for j in range(math.floor(start), min(math.ceil(end), size_in)):
            weights[i, j] = min(end, j + 1) - max(start, j)
        weights[i] /= end - start
    return weights


def _round_half_up(x: float) -> int:
    # JavaScript's Math.round; Python's round() rounds half to even and would disagree with the page.
    return math.floor(x + 0.5)
