"""Decoder and letterbox: EXIF orientation, sizes, pixel-exact parity with ultralytics' LetterBox, mapping back to
original pixels, and a fuzz of the decoder."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.serving import images
from app.serving.errors import BadImage
from tests.app.serving.samples import generated_image, ultralytics_asset

MAX_PIXELS = 50_000_000


def _with_orientation(data: bytes, orientation: int) -> bytes:
    """Store the pixels rotated so that EXIF ``orientation`` brings them back upright (PNG: lossless)."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    stored = img.transpose(Image.Transpose.ROTATE_90)  # orientation 6 = "rotate 90 CW to display"
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, format="PNG", exif=exif.tobytes())
    return buf.getvalue()


def test_decode_reports_exif_oriented_size() -> None:
    rotated = _with_orientation(generated_image(480, 320), 6)
    rgb = images.decode(rotated, max_pixels=MAX_PIXELS)
    assert rgb.shape == (320, 480, 3)
    lb = images.letterbox(rgb, 160)
    assert (lb.width, lb.height) == (480, 320)


def test_exif_rotated_image_gives_the_same_model_input_as_upright() -> None:
    upright = images.load(generated_image(480, 320), imgsz=160, max_pixels=MAX_PIXELS)
    rotated = images.load(_with_orientation(generated_image(480, 320), 6), imgsz=160, max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(upright.tensor, rotated.tensor)


def test_letterbox_centres_with_pad_114_like_ultralytics() -> None:
    lb = images.load(generated_image(480, 320), imgsz=160, max_pixels=MAX_PIXELS)
    assert lb.tensor.shape == (1, 3, 160, 160) and lb.tensor.dtype == np.float32
    # 480x320 -> 160x107: 53 rows of padding, 26 on top (ultralytics rounds d - 0.1), 27 below
    assert (lb.pad_x, lb.pad_y) == (0, 26)
    assert np.allclose(lb.tensor[0, :, :26, :], 114 / 255) and np.allclose(
        lb.tensor[0, :, 26 + 107 :, :], 114 / 255
    )
    assert not np.allclose(lb.tensor[0, :, 26, :], 114 / 255)


def test_to_original_maps_input_corners_to_image_corners_and_clips() -> None:
    lb = images.load(generated_image(480, 320), imgsz=160, max_pixels=MAX_PIXELS)
    content = np.array([[0.0, 26.0, 160.0, 26.0 + 107.0], [-5.0, 0.0, 170.0, 160.0]])
    mapped = lb.to_original(content)
    np.testing.assert_allclose(mapped[0], [0, 0, 480, 320], atol=1e-6)
    np.testing.assert_allclose(mapped[1], [0, 0, 480, 320], atol=1e-6)


@pytest.mark.parametrize("name", ["bus.jpg", "zidane.jpg"])
def test_jpeg_decodes_to_the_pixels_opencv_gives_ultralytics(name: str) -> None:
    data = ultralytics_asset(name)
    theirs = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(images.decode(data, max_pixels=MAX_PIXELS), theirs)


def test_large_jpeg_is_decoded_at_full_resolution() -> None:
    """No reduced-scale (DCT draft) decoding: it changes the pixels the network sees."""
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 20, 30)).save(buf, format="JPEG")
    assert images.decode(buf.getvalue(), max_pixels=MAX_PIXELS).shape == (3000, 4000, 3)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", ultralytics_asset("bus.jpg")[:2000]],
    ids=["empty", "text", "truncated-jpeg"],
)
def test_undecodable_bytes_raise_bad_image(data: bytes) -> None:
    with pytest.raises(BadImage):
        images.load(data, imgsz=160, max_pixels=MAX_PIXELS)


def test_image_over_pixel_limit_is_bad_image() -> None:
    with pytest.raises(BadImage, match="at most 1000 pixels"):
        images.load(generated_image(480, 320), imgsz=160, max_pixels=1000)


_SEED = ultralytics_asset("zidane.jpg")[:4096] + generated_image(64, 48)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2048),
        # mutations of real JPEG/PNG headers reach deeper into the decoders than random bytes
        st.tuples(
            st.integers(0, len(_SEED) - 1), st.binary(min_size=1, max_size=64), st.integers(16, len(_SEED))
        ).map(lambda t: (_SEED[: t[0]] + t[1] + _SEED[t[0] + len(t[1]) :])[: t[2]]),
    )
)
def test_decoder_fuzz_returns_an_input_or_bad_image(data: bytes) -> None:
    try:
        lb = images.load(data, imgsz=64, max_pixels=4_000_000)
    except BadImage:
        return
    assert lb.tensor.shape == (1, 3, 64, 64) and lb.width >= 1 and lb.height >= 1


@pytest.mark.parametrize("size", [(480, 320), (320, 480), (333, 111), (160, 160)])
@pytest.mark.parametrize("stride", [None, 32])
def test_letterbox_geometry_matches_ultralytics(size: tuple[int, int], stride: int | None) -> None:
    """Canvas shape and content placement agree with ultralytics' LetterBox (auto=False static, auto=True rect)."""
    augment = pytest.importorskip("ultralytics.data.augment")
    colour = (10, 200, 30)
    img = Image.new("RGB", size, colour)
    ours = images.letterbox(np.asarray(img), imgsz=160, stride=stride)
    theirs = augment.LetterBox((160, 160), auto=stride is not None, stride=stride or 32)(
        image=np.asarray(img)[..., ::-1]
    )
    assert ours.tensor.shape[2:] == theirs.shape[:2]
    content = np.argwhere((theirs == colour[::-1]).all(axis=2))
    assert (ours.pad_y, ours.pad_x) == tuple(content.min(axis=0))


@pytest.mark.parametrize(
    ("name", "size"),
    [("bus.jpg", None), ("zidane.jpg", None), ("zidane.jpg", (2560, 1440)), ("bus.jpg", (90, 120))],
    ids=["bus", "zidane", "2560-wide", "small-upscaled"],
)
@pytest.mark.parametrize("stride", [None, 32])
def test_letterbox_is_pixel_identical_to_ultralytics(
    name: str, size: tuple[int, int] | None, stride: int | None
) -> None:
    """Same interpolation (cv2 INTER_LINEAR), rounding and padding: the model input equals ultralytics' exactly."""
    augment = pytest.importorskip("ultralytics.data.augment")
    bgr = cv2.imdecode(np.frombuffer(ultralytics_asset(name), np.uint8), cv2.IMREAD_COLOR)
    if size is not None:
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
    ours = images.letterbox(np.ascontiguousarray(bgr[..., ::-1]), 640, stride)
    theirs = augment.LetterBox((640, 640), auto=stride is not None, stride=stride or 32)(image=bgr)
    expected = theirs[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    np.testing.assert_array_equal(ours.tensor, expected)


def test_load_keeps_one_full_resolution_copy_of_a_large_photo() -> None:
    """Serving's CPU per request: a 12-megapixel photo is decoded once and letterboxed from the decoder's own BGR
    pixels, never copied whole into RGB first (that copy cost more than the decode). Peak memory during ``load``
    shows it: one full-resolution image, not two (numpy and OpenCV's arrays both report to tracemalloc)."""
    bus = cv2.imdecode(np.frombuffer(ultralytics_asset("bus.jpg"), np.uint8), cv2.IMREAD_COLOR)
    assert bus is not None
    bgr = cv2.resize(bus, (3000, 4000))
    data = cv2.imencode(".jpg", bgr)[1].tobytes()
    one_copy = bgr.nbytes
    tracemalloc.start()
    try:
        lb = images.load(data, imgsz=640, max_pixels=MAX_PIXELS, stride=32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lb.tensor.shape == (1, 3, 640, 480)
    assert peak < 1.5 * one_copy, f"peak {peak / one_copy:.2f} x the decoded photo; expected one copy"


def test_exif_rotated_large_jpeg_is_decoded_upright() -> None:
    upright = Image.new("RGB", (2400, 1200), (200, 30, 30))
    upright.paste((30, 30, 200), (0, 0, 600, 1200))  # blue band on the left when displayed
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, format="JPEG", exif=exif.tobytes())
    rgb = images.decode(buf.getvalue(), max_pixels=MAX_PIXELS)
    assert rgb.shape == (1200, 2400, 3)  # upright
    left, right = rgb[600, 5], rgb[600, -5]
    assert left[2] > 150 > left[0] and right[0] > 150 > right[2]


def _sixteen_bit_gray_png() -> bytes:
    bgr = cv2.imdecode(np.frombuffer(ultralytics_asset("bus.jpg"), np.uint8), cv2.IMREAD_COLOR)
    gray16 = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257  # full 16-bit range
    return cv2.imencode(".png", gray16)[1].tobytes()


def _cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(ultralytics_asset("zidane.jpg"))).convert("CMYK").save(
        buf, format="JPEG", quality=92
    )
    return buf.getvalue()


def _palette_png() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(ultralytics_asset("bus.jpg"))).convert("P", palette=Image.Palette.ADAPTIVE).save(
        buf, format="PNG"
    )
    return buf.getvalue()


UNUSUAL = {"gray16.png": _sixteen_bit_gray_png, "cmyk.jpg": _cmyk_jpeg, "palette.png": _palette_png}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_images_decode_to_the_pixels_ultralytics_reads(name: str, tmp_path: Path) -> None:
    """16-bit, CMYK and palette images: the pixels ultralytics' imread gives predict (PIL made 16-bit almost white)."""
    from ultralytics.utils.patches import imread

    data = UNUSUAL[name]()
    path = tmp_path / name
    path.write_bytes(data)
    theirs = imread(str(path))[..., ::-1]
    np.testing.assert_array_equal(images.decode(data, max_pixels=MAX_PIXELS), theirs)
