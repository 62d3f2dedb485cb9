"""Deterministic, stratified, grouped train/val[/test] split at image level.

The unit of assignment is a group (an image by default; with a group key, all images sharing it, e.g. the same
S3 prefix, so near-duplicates never straddle splits). Each unit is stratified by the rarest class it contains
(negatives form their own stratum); inside a stratum units are ordered by a seeded hash of their key, so the
result depends on the seed and the keys only, never on manifest order or the machine.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from app.contracts.dataset import TEST, TRAIN, VAL
from app.dataprep.errors import DataprepError

NEGATIVE_STRATUM = -1


def group_keys(source_refs: pd.Series, group_by: str | None) -> pd.Series:
    """Per-image group key: ``None`` (the image itself), ``prefix`` (the URI's folder) or ``regex:PATTERN``."""
    if not group_by:
        return source_refs.astype(object)
    if group_by == "prefix":
        return source_refs.str.rsplit("/", n=1).str[0].astype(object)
    if group_by.startswith("regex:"):
        try:
            pattern = re.compile(group_by[len("regex:") :])
        except re.error as exc:
            raise DataprepError(f"--group-by {group_by!r}: invalid regular expression ({exc})") from None
        if pattern.groups < 1:
            raise DataprepError(
                f"--group-by {group_by!r}: expected one capture group, e.g. regex:/(site\\d+)/"
            )
        found = source_refs.str.extract(pattern, expand=False)
        found = found.iloc[:, 0] if isinstance(found, pd.DataFrame) else found
        # an image the pattern does not match is its own group
        return found.where(found.notna(), source_refs).astype(object)
    raise DataprepError(f"--group-by {group_by!r}: expected 'prefix' or 'regex:PATTERN'")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """The split shares a dataset can have: 0 < val, 0 <= test, val + test < 1."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DataprepError(
            f"--val-fraction {val_fraction} / --test-fraction {test_fraction}: expected 0 < val, 0 <= test, "
            "val + test < 1"
        )


def image_class_pairs(
    img: np.ndarray, cls: np.ndarray, n_images: int, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct (image, class) of the boxes once, ordered by image then class."""
    if n_images * n_classes <= 64_000_000:  # a presence bitmap is linear; np.unique would sort
        seen = np.zeros((n_images, n_classes), dtype=bool)
        seen[img, cls] = True
        found = np.nonzero(seen)
        return found[0], found[1]
    pairs = np.unique(img.astype(np.int64) * n_classes + cls)
    return pairs // n_classes, pairs % n_classes


def seeded_hash(keys: pd.Series, seed: int) -> np.ndarray:
    """A stable 64-bit hash of each key mixed with the seed (siphash via pandas; same on every machine)."""
    hash_key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"
    return pd.util.hash_array(keys.astype(str).to_numpy(dtype=object), hash_key=hash_key, categorize=False)


def assign_splits(
    images: pd.DataFrame,
    boxes: pd.DataFrame,
    *,
    val_fraction: float,
    test_fraction: float = 0.0,
    seed: int = 0,
    group_by: str | None = None,
) -> np.ndarray:
    """Return the split name of every row of ``images`` (an object array of train/val/test)."""
    check_fractions(val_fraction, test_fraction)
    n = len(images)
    if n == 0:
        return np.empty(0, dtype=object)
    keys = group_keys(images["source_ref"], group_by)
    unit_codes, unit_keys = pd.factorize(keys, sort=False)
    # rarest class per image (by image frequency; ties -> lower id), then rarest per unit
    n_classes = int(boxes["cls"].max()) + 1 if len(boxes) else 1
    pair_img, pair_cls = image_class_pairs(boxes["image"].to_numpy(), boxes["cls"].to_numpy(), n, n_classes)
    freq = np.bincount(pair_cls, minlength=n_classes)
    none = np.iinfo(np.int64).max
    best = np.full(n, none, dtype=np.int64)
    np.minimum.at(best, pair_img, freq[pair_cls] * n_classes + pair_cls)
    image_stratum = np.where(best == none, NEGATIVE_STRATUM, best % n_classes)
    freq_map = pd.Series(freq)
    stratum_rarity = np.where(
        image_stratum >= 0, pd.Series(image_stratum).map(freq_map).fillna(np.inf).to_numpy(), np.inf
    )
    per_image = pd.DataFrame({"unit": unit_codes, "stratum": image_stratum, "rarity": stratum_rarity})
    unit_stratum = (
        per_image.sort_values(["unit", "rarity", "stratum"], kind="stable")
        .groupby("unit", sort=True)["stratum"]
        .first()
    )
    units = pd.DataFrame(
        {
            "stratum": unit_stratum.to_numpy(),
            "hash": seeded_hash(pd.Series(unit_keys), seed)[unit_stratum.index],
        }
    )
    units = units.sort_values(["stratum", "hash"], kind="stable")
    # systematic sampling along the stratum-ordered list: exact global fractions, every stratum represented
    # in proportion, and tiny strata still add up across the list instead of each rounding to zero
    pos = np.arange(len(units), dtype=np.float64)
    is_val = np.floor((pos + 1) * val_fraction + 0.5) > np.floor(pos * val_fraction + 0.5)
    rest = np.cumsum(~is_val) - 1
    test_share = test_fraction / (1 - val_fraction)
    is_test = ~is_val & (np.floor((rest + 1) * test_share + 0.5) > np.floor(rest * test_share + 0.5))
    unit_split = np.where(is_val, VAL, np.where(is_test, TEST, TRAIN)).astype(object)
    split_of_unit = np.empty(len(unit_keys), dtype=object)
    split_of_unit[units.index.to_numpy()] = unit_split
    return split_of_unit[unit_codes]
