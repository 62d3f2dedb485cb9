"""A small, learnable, labelled image set in Ground Truth ``output.manifest`` form (for the demo and e2e tests).

Four tool classes drawn as distinct filled shapes with their own colour family (drill = disc, hammer = triangle,
paintbrush = ring, screwdriver = plus), varied in size, position, colour and background, deliberately imbalanced
(screwdrivers dominate, as in the original article) with some images holding no object. Images are JPEGs under
``<out>/images/<prefix>/``; source-refs are ``s3://<bucket>/<prefix>/<file>`` so ``--image-root <out>/images``
maps them back. The manifest uses a custom label attribute and a sparse class map. Deterministic by seed.

    python -m app.dataprep.synthetic --out DIR --images 150
"""

from __future__ import annotations

import argparse
import colorsys
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# sparse Ground Truth ids, class name, base hue, relative frequency
CLASSES: tuple[tuple[str, str, float, float], ...] = (
    ("0", "drill", 0.00, 0.18),
    ("3", "hammer", 0.62, 0.16),
    ("4", "paintbrush", 0.33, 0.10),
    ("7", "screwdriver", 0.14, 0.56),
)
LABEL_ATTRIBUTE = "tools-bbox-ref"
BUCKET = "synthetic-groundtruth"
PREFIX = "tools/raw"
EMPTY_SHARE = 0.1


@dataclass(frozen=True)
class GeneratedSet:
    manifest_path: Path
    image_root: Path
    label_attribute: str
    class_names: list[str]  # in Ground Truth id order (= the YOLO ids data prep assigns)
    class_map: dict[str, str]
    n_images: int
    n_boxes: int


def _colour(rng: random.Random, hue: float) -> tuple[int, int, int]:
    h = (hue + rng.uniform(-0.04, 0.04)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _background(rng: random.Random, nrng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Muted two-colour gradient + noise + a few thin grey distractor lines."""
    c1 = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.25), rng.uniform(0.35, 0.85))) * 255
    c2 = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.25), rng.uniform(0.35, 0.85))) * 255
    t = np.linspace(0, 1, width if rng.random() < 0.5 else height)
    grad = c1[None, :] * (1 - t[:, None]) + c2[None, :] * t[:, None]
    arr = np.broadcast_to(grad[None, :, :], (height, width, 3)) if len(t) == width else grad[:, None, :]
    arr = np.broadcast_to(arr, (height, width, 3)) + nrng.normal(0, 8, (height, width, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(0, 4)):
        grey = rng.randint(60, 200)
        pts = [(rng.randint(0, width), rng.randint(0, height)) for _ in range(2)]
        draw.line(pts, fill=(grey, grey, grey), width=rng.randint(1, 3))
    return img


def _draw(
    draw: ImageDraw.ImageDraw, name: str, box: tuple[int, int, int, int], fill: tuple[int, int, int]
) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name == "drill":
        draw.ellipse(box, fill=fill)
    elif name == "hammer":
        draw.polygon([(x1, y2), (x2, y2), ((x1 + x2) / 2, y1)], fill=fill)
    elif name == "paintbrush":
        draw.ellipse(box, outline=fill, width=max(3, int(min(w, h) * 0.22)))
    else:  # screwdriver: a plus sign
        tw, th = max(3, int(w * 0.3)), max(3, int(h * 0.3))
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        draw.rectangle((cx - tw // 2, y1, cx + tw // 2, y2), fill=fill)
        draw.rectangle((x1, cy - th // 2, x2, cy + th // 2), fill=fill)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def generate_ground_truth(
    out_dir: Path,
    *,
    n_images: int = 150,
    seed: int = 0,
    imgsz: int = 320,
    max_objects: int = 3,
    label_attribute: str = LABEL_ATTRIBUTE,
    bucket: str = BUCKET,
    prefix: str = PREFIX,
) -> GeneratedSet:
    """Write ``n_images`` JPEGs and ``<out_dir>/output.manifest``; return where everything is."""
    out_dir = Path(out_dir)
    image_root = out_dir / "images"
    folder = image_root / prefix
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    names = [c[1] for c in CLASSES]
    weights = [c[3] for c in CLASSES]
    lines: list[str] = []
    n_boxes = 0
    for i in range(n_images):
        width = rng.choice([imgsz, int(imgsz * 4 / 3)])
        height = rng.choice([imgsz, int(imgsz * 3 / 4)])
        img = _background(rng, nrng, width, height)
        draw = ImageDraw.Draw(img)
        count = 0 if rng.random() < EMPTY_SHARE else rng.randint(1, max_objects)
        placed: list[tuple[int, int, int, int]] = []
        annotations: list[dict[str, int]] = []
        class_map: dict[str, str] = {}
        for _ in range(count):
            k = rng.choices(range(len(CLASSES)), weights=weights)[0]
            sid, name, hue, _ = CLASSES[k]
            for _attempt in range(20):
                side = rng.uniform(0.22, 0.42) * min(width, height)
                bw = int(side * rng.uniform(0.8, 1.25))
                bh = int(side * rng.uniform(0.8, 1.25))
                x1 = rng.randint(0, width - bw - 1)
                y1 = rng.randint(0, height - bh - 1)
                box = (x1, y1, x1 + bw, y1 + bh)
                if all(_iou(box, other) < 0.1 for other in placed):
                    break
            else:
                continue
            placed.append(box)
            _draw(draw, name, box, _colour(rng, hue))
            annotations.append({"class_id": int(sid), "left": x1, "top": y1, "width": bw, "height": bh})
            class_map[sid] = name
        if rng.random() < 0.3:
            img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
        file = f"tool_{i:05d}.jpg"
        img.save(folder / file, format="JPEG", quality=90)
        n_boxes += len(annotations)
        record = {
            "source-ref": f"s3://{bucket}/{prefix}/{file}",
            label_attribute: {
                "image_size": [{"width": width, "height": height, "depth": 3}],
                "annotations": annotations,
            },
            f"{label_attribute}-metadata": {
                "objects": [{"confidence": round(rng.uniform(0.8, 0.99), 2)} for _ in annotations],
                "class-map": class_map,
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": f"2024-05-01T12:{i // 60 % 60:02d}:{i % 60:02d}.000000",
                "job-name": f"labeling-job/{label_attribute}",
            },
        }
        lines.append(json.dumps(record))
    manifest = out_dir / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    return GeneratedSet(
        manifest_path=manifest,
        image_root=image_root,
        label_attribute=label_attribute,
        class_names=names,
        class_map={c[0]: c[1] for c in CLASSES},
        n_images=n_images,
        n_boxes=n_boxes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.dataprep.synthetic", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="folder for output.manifest and images/")
    p.add_argument("--images", type=int, default=150, help="number of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imgsz", type=int, default=320, help="base image side in pixels")
    args = p.parse_args(argv)
    if args.images < 1 or args.imgsz < 64:
        p.error("expected --images >= 1 and --imgsz >= 64")
    made = generate_ground_truth(args.out, n_images=args.images, seed=args.seed, imgsz=args.imgsz)
    print(
        f"wrote {made.n_images} images ({made.n_boxes} boxes) and {made.manifest_path}; "
        f"use --image-root {made.image_root}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
