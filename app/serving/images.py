"""Image bytes -> model input: decode (JPEG/PNG/...), apply EXIF orientation, letterbox to the model's square input.

Matches ultralytics' ``LetterBox(auto=False)`` (scale to fit, centred, pad 114) so the ONNX graph sees what it saw in
validation. ``Letterboxed.to_original`` maps boxes from input pixels back to the original (EXIF-rotated) image.
Large JPEGs are decoded at a reduced DCT scale (``Image.draft``) that still covers the input size: the detector
never sees more pixels than imgsz, and a 12 MP photo decodes ~8x faster.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from app.contracts.artifact import LETTERBOX_PAD_VALUE
from app.serving.errors import BadImage

# "JPEG" also opens MPO, the multi-picture JPEG that many phones write.
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")
_ROTATES_90 = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True)
class Letterboxed:
    """The model input for one image and how to map its pixels back to the original image."""

    tensor: np.ndarray  # float32 [1, 3, H, W], RGB 0..1 (H = W = imgsz unless letterboxed to a stride)
    width: int  # original image, EXIF orientation applied
    height: int
    pad_x: int
    pad_y: int
    scale_x: float  # original pixels per input pixel
    scale_y: float

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Input-pixel boxes [N, 4] -> original-pixel boxes, clipped to the image."""
        out = np.empty_like(xyxy)
        out[:, [0, 2]] = ((xyxy[:, [0, 2]] - self.pad_x) * self.scale_x).clip(0, self.width)
        out[:, [1, 3]] = ((xyxy[:, [1, 3]] - self.pad_y) * self.scale_y).clip(0, self.height)
        return out


def decode(data: bytes, *, imgsz: int, max_pixels: int, what: str = "image") -> tuple[Image.Image, int, int]:
    """Decode to an RGB image with EXIF orientation applied; also return the original (oriented) width, height.

    Raises BadImage naming ``what`` for empty, unidentifiable, truncated or oversized input.
    """
    if not data:
        raise BadImage(f"{what}: empty (0 bytes); expected the bytes of a JPEG or PNG image")
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Exception as exc:  # PIL raises many types for garbage; all mean "not an image we can read"
        raise BadImage(
            f"{what}: not a readable image ({type(exc).__name__}); expected {', '.join(FORMATS)}"
        ) from None
    width, height = img.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise BadImage(
            f"{what}: {width}x{height} pixels; expected at least 1x1 and at most {max_pixels} pixels"
        )
    try:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in _ROTATES_90:
            width, height = height, width
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (imgsz, imgsz))  # DCT-domain downscale, never below imgsz on either side
        img = ImageOps.exif_transpose(img) or img
        rgb = img.convert("RGB")
        rgb.load()
    except Exception as exc:  # truncated/corrupt data surfaces only when pixels are read
        raise BadImage(
            f"{what}: corrupt or truncated {img.format} data ({type(exc).__name__}: {exc})"
        ) from None
    return rgb, width, height


def letterbox(
    img: Image.Image, width: int, height: int, imgsz: int, stride: int | None = None
) -> Letterboxed:
    """Resize to fit imgsz x imgsz keeping the aspect ratio, centre it on a 114-grey canvas, scale to 0..1.

    With ``stride`` (graphs exported with dynamic height/width) the canvas is the smallest multiple of the stride
    that holds the image, as ultralytics does for PyTorch models (``LetterBox(auto=True)``): a 4:3 photo costs
    a quarter less compute than on the full square.
    """
    w, h = img.size
    r = min(imgsz / w, imgsz / h)
    new_w, new_h = max(1, round(w * r)), max(1, round(h * r))
    canvas_w, canvas_h = (
        (imgsz, imgsz) if stride is None else (-(-new_w // stride) * stride, -(-new_h // stride) * stride)
    )
    # ultralytics' centring: round(d - 0.1) puts the odd pixel of padding at the bottom/right
    left, top = round((canvas_w - new_w) / 2 - 0.1), round((canvas_h - new_h) / 2 - 0.1)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    canvas = np.full((canvas_h, canvas_w, 3), LETTERBOX_PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = np.asarray(img)
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32, order="C")
    tensor *= 1.0 / 255.0
    return Letterboxed(tensor, width, height, left, top, width / new_w, height / new_h)


def load(
    data: bytes, *, imgsz: int, max_pixels: int, what: str = "image", stride: int | None = None
) -> Letterboxed:
    img, width, height = decode(data, imgsz=imgsz, max_pixels=max_pixels, what=what)
    return letterbox(img, width, height, imgsz, stride)
