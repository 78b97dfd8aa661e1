"""service.images: uploaded bytes -> MNIST-style float32 arrays, and clear errors for bad uploads."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.images import MAX_PIXELS, ImageError, preprocess_image


def _digit_seven(
    ink: int, paper: int, size: tuple[int, int] = (200, 160), offset: tuple[int, int] = (0, 0)
) -> Image.Image:
    """A thick "7" drawn off-centre, as a person would on paper (ink on paper) or a screen."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    dx, dy = offset
    draw.line([(30 + dx, 30 + dy), (120 + dx, 30 + dy), (70 + dx, 150 + dy)], fill=ink, width=14)
    return image


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    mass = a.sum()
    return float((a.sum(axis=1) * np.arange(a.shape[0])).sum() / mass), float(
        (a.sum(axis=0) * np.arange(a.shape[1])).sum() / mass
    )


def test_black_on_white_and_white_on_black_give_the_same_array() -> None:
    dark_on_light = preprocess_image(_encode(_digit_seven(ink=0, paper=255)), 28, 28)
    light_on_dark = preprocess_image(_encode(_digit_seven(ink=255, paper=0)), 28, 28)
    assert dark_on_light.dtype == np.float32 and dark_on_light.shape == (28, 28)
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=1e-3)


def test_output_is_mnist_style_white_digit_on_black_centred_in_a_20_pixel_box() -> None:
    a = preprocess_image(_encode(_digit_seven(ink=20, paper=235)), 28, 28)
    assert a.min() >= 0.0 and a.max() <= 255.0
    assert a.max() > 200  # the stretch makes the ink white even though it was dark grey on light grey
    assert a[0, :].max() == 0 and a[:, 0].max() == 0  # background is black
    ink_rows = np.flatnonzero(a.max(axis=1) > 0)
    ink_cols = np.flatnonzero(a.max(axis=0) > 0)
    assert max(ink_rows[-1] - ink_rows[0] + 1, ink_cols[-1] - ink_cols[0] + 1) == 20
    cy, cx = _centre_of_mass(a)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_position_and_size_of_the_drawing_do_not_matter() -> None:
    small = _digit_seven(ink=0, paper=255, size=(400, 400))
    moved = _digit_seven(ink=0, paper=255, size=(400, 400), offset=(200, 180))
    a = preprocess_image(_encode(small), 28, 28)
    b = preprocess_image(_encode(moved), 28, 28)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_jpeg_and_rgb_and_transparent_png_are_read() -> None:
    reference = preprocess_image(_encode(_digit_seven(ink=0, paper=255)), 28, 28)
    jpeg = preprocess_image(_encode(_digit_seven(ink=0, paper=255).convert("RGB"), "JPEG", quality=90), 28, 28)
    assert np.abs(jpeg - reference).mean() < 8  # lossy, but the same digit
    # Black ink on a fully transparent background: transparency is paper (white), so it is inverted.
    rgba = Image.new("RGBA", (200, 160), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(30, 30), (120, 30), (70, 150)], fill=(0, 0, 0, 255), width=14)
    np.testing.assert_allclose(preprocess_image(_encode(rgba), 28, 28), reference, atol=1e-3)


def test_exif_orientation_is_applied() -> None:
    upright = _digit_seven(ink=0, paper=255).convert("RGB")
    # Stored rotated, with EXIF orientation 6 ("rotate 90 CW to display"): a camera held sideways.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = preprocess_image(_encode(stored, "JPEG", quality=95, exif=exif.tobytes()), 28, 28)
    reference = preprocess_image(_encode(upright, "JPEG", quality=95), 28, 28)
    assert np.abs(rotated - reference).mean() < 8


@pytest.mark.parametrize(("height", "width"), [(28, 28), (32, 16), (16, 40), (1, 1)])
def test_output_shape_follows_the_target_including_non_square(height: int, width: int) -> None:
    a = preprocess_image(_encode(_digit_seven(ink=0, paper=255)), height, width)
    assert a.shape == (height, width) and a.dtype == np.float32
    assert a.max() > 0


def test_non_square_target_keeps_the_aspect_ratio() -> None:
    # A wide bar, 4:1, into a tall 40x20 frame: longest side 20/28 of the frame's matching side, aspect kept.
    bar = Image.new("L", (400, 100), 0)
    ImageDraw.Draw(bar).rectangle([50, 30, 249, 79], fill=255)  # 200x50 ink
    a = preprocess_image(_encode(bar), 40, 20)
    rows = np.flatnonzero(a.max(axis=1) > 1)
    cols = np.flatnonzero(a.max(axis=0) > 1)
    assert cols[-1] - cols[0] + 1 == round(20 * 20 / 28)  # width-limited: 14 px
    assert rows[-1] - rows[0] + 1 in (3, 4, 5)  # 14 / 4 = 3.5, up to partial edge pixels


def test_blank_image_gives_zeros() -> None:
    blank = preprocess_image(_encode(Image.new("L", (50, 50), 255)), 28, 28)
    assert blank.shape == (28, 28) and not blank.any()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plainly not an image", "not a recognised image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
    ],
)
def test_bad_bytes_raise_image_error_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        preprocess_image(data, 28, 28)


def test_truncated_png_raises_image_error() -> None:
    data = _encode(_digit_seven(ink=0, paper=255))
    with pytest.raises(ImageError, match="corrupt|truncated|image"):
        preprocess_image(data[: len(data) // 2], 28, 28)


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions with almost no data: the decompression-bomb shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (100_000, 100_000)])
def test_huge_dimensions_are_rejected_before_decoding(width: int, height: int) -> None:
    assert width * height > MAX_PIXELS
    with pytest.raises(ImageError, match="pixels|too large"):
        preprocess_image(_png_header_only(width, height), 28, 28)
