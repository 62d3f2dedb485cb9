"""A mistyped --label-attribute is named, with the attributes the manifest does hold (it used to reject every record
as "failed_worker")."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.dataprep.cli import main
from tests.app.dataprep.ground_truth import ATTR, box, record, write_manifest


def test_wrong_label_attribute_names_the_ones_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = [f"s3://gt-bucket/raw/img{i}.jpg" for i in range(4)]
    manifest = write_manifest(
        tmp_path / "output.manifest", [record(ref, [box(0, 1, 1, 5, 5)]) for ref in refs]
    )
    out = tmp_path / "dataset"
    code = main(["--manifest", str(manifest), "--out", str(out), "--label-attribute", "tools-bbox"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "--label-attribute 'tools-bbox' is in none of the first 4 records" in err
    assert f"object-detection label attributes present: '{ATTR}'" in err
    assert not out.exists()


def test_right_label_attribute_is_accepted(tmp_path: Path) -> None:
    refs = [f"s3://gt-bucket/raw/img{i}.jpg" for i in range(4)]
    manifest = write_manifest(
        tmp_path / "output.manifest", [record(ref, [box(0, 1, 1, 5, 5)]) for ref in refs]
    )
    from app.dataprep.manifest import parse_manifest

    assert parse_manifest(manifest, ATTR).label_attribute == ATTR
