"""The synthetic Ground Truth set: deterministic, valid for data prep, imbalanced, with negatives."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.dataprep.manifest import parse_manifest
from app.dataprep.synthetic import GeneratedSet, generate_ground_truth


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSet:
    return generate_ground_truth(tmp_path_factory.mktemp("syn"), n_images=40, seed=3, imgsz=128)


def test_same_seed_gives_identical_files(generated: GeneratedSet, tmp_path: Path) -> None:
    again = generate_ground_truth(tmp_path, n_images=40, seed=3, imgsz=128)
    assert again.manifest_path.read_bytes() == generated.manifest_path.read_bytes()
    digest = lambda root: {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg")}  # noqa: E731
    assert digest(again.image_root) == digest(generated.image_root)


def test_manifest_parses_cleanly_with_a_sparse_class_map(generated: GeneratedSet) -> None:
    parsed = parse_manifest(generated.manifest_path)
    assert not parsed.rejects and parsed.label_attribute == generated.label_attribute
    assert [c.source_id for c in parsed.classes] == ["0", "3", "4", "7"]


def test_one_class_dominates_and_some_images_are_empty(generated: GeneratedSet) -> None:
    parsed = parse_manifest(generated.manifest_path)
    counts = parsed.boxes["cls"].value_counts()
    assert counts.idxmax() == 3 and counts.max() >= 2 * counts.min()  # screwdriver
    assert parsed.boxes["image"].nunique() < len(parsed.images)


def test_source_refs_map_onto_the_image_root(generated: GeneratedSet) -> None:
    parsed = parse_manifest(generated.manifest_path)
    key = parsed.images["source_ref"].iloc[0].split("/", 3)[3]
    assert (generated.image_root / key).is_file()


def test_objects_are_not_tiny(generated: GeneratedSet) -> None:
    parsed = parse_manifest(generated.manifest_path)
    side = (parsed.boxes["x2"] - parsed.boxes["x1"]) / parsed.images["width"].to_numpy()[
        parsed.boxes["image"]
    ]
    assert side.min() > 0.1
