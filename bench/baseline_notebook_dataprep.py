"""BASELINE ONLY (for bench/bench_dataprep.py): the original notebook's data prep approach, row by row.

This is a deliberately straightforward re-implementation of what the original blog notebook did, kept solely to
measure our planner against it; nothing else imports it. Like the notebook it: assumes the label attribute is the
job name, reads the manifest line by line into a list of per-box dicts and a pandas frame, converts each row to a
YOLO line with ``iterrows``, "balances" by dropping images with more than 3 boxes of the most frequent class (the
notebook hard-coded "screwdriver"), and splits images at random. It does no validation beyond skipping records
without the attribute. Only planning is reproduced (no S3 writes), so it is compared like for like.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd


def plan_baseline(
    manifest: Path, job_name: str, max_lines: int | None = None, seed: int = 0
) -> dict[str, object]:
    rows = []
    with open(manifest) as handle:
        for n, line in enumerate(handle):
            if max_lines is not None and n >= max_lines:
                break
            data = json.loads(line)
            if job_name not in data:
                continue
            size = data[job_name]["image_size"][0]
            class_map = data[job_name + "-metadata"]["class-map"]
            for ann in data[job_name]["annotations"]:
                rows.append(
                    {
                        "image": data["source-ref"],
                        "img_w": size["width"],
                        "img_h": size["height"],
                        "class_id": ann["class_id"],
                        "class": class_map[str(ann["class_id"])],
                        "left": ann["left"],
                        "top": ann["top"],
                        "width": ann["width"],
                        "height": ann["height"],
                    }
                )
    df = pd.DataFrame(rows)

    # class order from the sorted class names (the notebook read it from a second file)
    classes = sorted(df["class"].unique())
    yolo = []
    for _, row in df.iterrows():
        cx = (row["left"] + row["width"] / 2) / row["img_w"]
        cy = (row["top"] + row["height"] / 2) / row["img_h"]
        w = row["width"] / row["img_w"]
        h = row["height"] / row["img_h"]
        yolo.append(f"{classes.index(row['class'])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    df["yolo"] = yolo

    # "balance": drop the labels of images with more than 3 boxes of the dominant class
    dominant = df["class"].value_counts().idxmax()
    per_image: dict[str, int] = {}
    for _, row in df.iterrows():
        if row["class"] == dominant:
            per_image[row["image"]] = per_image.get(row["image"], 0) + 1
    too_many = {img for img, c in per_image.items() if c > 3}

    labels: dict[str, list[str]] = {}
    for _, row in df.iterrows():
        if row["image"] not in too_many:
            labels.setdefault(row["image"], []).append(row["yolo"])

    images = sorted(df["image"].unique())
    random.Random(seed).shuffle(images)
    cut = int(len(images) * 0.8)
    return {"train": images[:cut], "val": images[cut:], "labels": labels, "classes": classes}
