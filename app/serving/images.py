"""Image bytes -> model input: decode (JPEG/PNG/WEBP/...), apply EXIF orientation, letterbox to the model's input.

Matches ultralytics' predict pipeline pixel for pixel, so what serving answers is what ``YOLO(model.pt).predict``
(and validation during training) sees: full-resolution decode by OpenCV as ultralytics' ``imread`` does (EXIF
orientation applied; 16-bit, CMYK and palette images converted as OpenCV converts them), then ``LetterBox``: scale to fit with OpenCV's ``INTER_LINEAR`` and ultralytics'
rounding, centre on a 114-grey canvas with the odd padding pixel at the bottom/right. No reduced-size (DCT draft)
decoding: it changes the pixels the network sees and moved boxes by several pixels on large photos.
``Letterboxed.to_original`` maps boxes from input pixels back to the original (EXIF-rotated) image the way
ultralytics' ``scale_boxes`` does.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from app.contracts.artifact import LETTERBOX_PAD_VALUE
from app.serving.errors import BadImage

# "JPEG" also opens MPO, the multi-picture JPEG that many phones write.
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")
# One image per inference thread: OpenCV's own thread pool would compete with ONNX Runtime's for the same cores.
cv2.setNumThreads(1)


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


def decode(data: bytes, *, max_pixels: int, what: str = "image") -> np.ndarray:
    """Decode to an RGB uint8 array [H, W, 3] with EXIF orientation applied (H, W as the viewer sees the image).

    ``decode_bgr`` in the viewer's channel order; serving itself letterboxes the BGR pixels (``load``)."""
    return np.ascontiguousarray(decode_bgr(data, max_pixels=max_pixels, what=what)[..., ::-1])


def decode_bgr(data: bytes, *, max_pixels: int, what: str = "image") -> np.ndarray:
    """Decode to a BGR uint8 array [H, W, 3] (OpenCV's channel order) with EXIF orientation applied.

    Decoded as ultralytics' ``imread`` does (what ``predict`` and the validator see): OpenCV's ``imdecode`` with
    ``IMREAD_COLOR`` - EXIF orientation applied, 16-bit images reduced to their high byte, CMYK and palette images
    converted by OpenCV - the first page of a TIFF, and PIL (EXIF-transposed) only for what OpenCV cannot decode.
    PIL's own conversions differ: a 16-bit grayscale PNG comes out almost white, so the boxes would too. BGR as
    decoded: turning a full-resolution photo into RGB is a copy that cost more CPU than the decode itself
    (bus.jpg: ~4.9 vs ~3.8 ms); ``letterbox`` swaps the channels on the small canvas instead.

    Raises BadImage naming ``what`` for empty, unidentifiable, truncated or oversized input. The size is checked
    from the header (PIL reads only that), before any pixel is decoded (decompression bombs).
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
    bgr = _opencv(np.frombuffer(data, np.uint8), tiff=img.format == "TIFF")
    if bgr is not None:
        return bgr
    try:  # formats this OpenCV build does not decode (e.g. GIF): PIL, upright, as ultralytics' fallback does
        img = ImageOps.exif_transpose(img) or img
        rgb = np.asarray(img.convert("RGB"))
    except Exception as exc:  # truncated/corrupt data surfaces only when pixels are read
        raise BadImage(
            f"{what}: corrupt or truncated {img.format} data ({type(exc).__name__}: {exc})"
        ) from None
    return np.ascontiguousarray(rgb[..., ::-1])


def _opencv(buffer: np.ndarray, *, tiff: bool) -> np.ndarray | None:
    """ultralytics.utils.patches.imread on bytes: BGR uint8 [H, W, 3], or None when OpenCV cannot decode it."""
    image = None
    if tiff:  # the first colour page, alpha dropped
        ok, frames = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED)
        if ok and frames and frames[0].ndim == 3:
            image = np.ascontiguousarray(frames[0][..., :3])
            if image.dtype == np.uint16:
                image = np.right_shift(image, 8).astype(np.uint8)
    if image is None:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image is None or image.dtype != np.uint8 or image.ndim != 3:
        return None
    return image


def letterbox(pixels: np.ndarray, imgsz: int, stride: int | None = None, *, bgr: bool = False) -> Letterboxed:
    """Resize to fit imgsz x imgsz keeping the aspect ratio, centre it on a 114-grey canvas, scale to 0..1 RGB.

    ``pixels``: uint8 [H, W, 3], RGB or (``bgr=True``) BGR; the tensor is RGB either way. ultralytics'
    ``LetterBox``: ``INTER_LINEAR``, each side ``round``-ed (at least 1 px), padding split with
    ``round(d -/+ 0.1)``. With ``stride`` (graphs exported with dynamic height/width) the canvas is the smallest
    multiple of the stride that holds the image, as ultralytics does for PyTorch models (``auto=True``): a 4:3 photo
    costs a quarter less compute than on the full square.

    Interpolation and padding treat the channels alike, so their order only matters at the last step: each plane
    goes to its RGB slot of the tensor, divided by 255 in float32 on the way - the same operation as ultralytics'
    ``astype(float32) / 255`` (bit-identical; a reciprocal multiply, as in ``cv2.dnn.blobFromImage``, is 1 ulp off),
    in one pass over contiguous planes instead of a strided transpose, a float copy and an in-place division.
    """
    height, width = pixels.shape[:2]
    r = min(imgsz / height, imgsz / width)
    new_w, new_h = max(round(width * r), 1), max(round(height * r), 1)
    canvas_w, canvas_h = (
        (imgsz, imgsz) if stride is None else (-(-new_w // stride) * stride, -(-new_h // stride) * stride)
    )
    left, top = round((canvas_w - new_w) / 2 - 0.1), round((canvas_h - new_h) / 2 - 0.1)
    if (new_w, new_h) != (width, height):
        pixels = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if (new_w, new_h) != (canvas_w, canvas_h):
        pixels = cv2.copyMakeBorder(
            pixels,
            top,
            canvas_h - new_h - top,
            left,
            canvas_w - new_w - left,
            cv2.BORDER_CONSTANT,
            value=(LETTERBOX_PAD_VALUE,) * 3,
        )
    planes = cv2.split(pixels)
    tensor = np.empty((1, 3, canvas_h, canvas_w), dtype=np.float32)
    for slot, plane in enumerate(planes[::-1] if bgr else planes):
        np.divide(plane, np.float32(255.0), out=tensor[0, slot], dtype=np.float32)
    return Letterboxed(tensor, width, height, left, top, width / new_w, height / new_h)


def load(
    data: bytes, *, imgsz: int, max_pixels: int, what: str = "image", stride: int | None = None
) -> Letterboxed:
    """Bytes -> model input, as ultralytics' predict prepares it (BGR decode, letterbox, RGB tensor)."""
    return letterbox(decode_bgr(data, max_pixels=max_pixels, what=what), imgsz, stride, bgr=True)
