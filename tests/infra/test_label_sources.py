"""The stage setting ``label_sources``: the dataprep (Processing) role reads exactly the datasets bucket's raw/ plus
the prefixes listed, lists only under them, and decrypts with their keys when given; malformed locations are
refused at synth. One extra one-stage synth (~40 s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.config import StageConfig
from tests.infra.synthesized import SynthesizedApp
from tests.infra.test_training_stack import role_id, role_statements

LABEL_KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SOURCES = [
    {"uri": "s3://labelling-output-bucket/jobs/tools-2024/", "kms_key_arn": LABEL_KEY},
    {"uri": "s3://coco-exports/cvat/"},
]


def actions(statement: dict[str, Any]) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def resources(statement: dict[str, Any]) -> list[Any]:
    return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]


def rendered(resource: Any) -> str:
    """An ARN with the partition token written as <partition> (``arn:<partition>:s3:::bucket/key*``)."""
    if isinstance(resource, str):
        return resource
    if "Fn::Join" not in resource:
        return "<token>"  # e.g. the datasets bucket's ARN imported from the Data stack
    parts = resource["Fn::Join"][1]
    return "".join(
        p if isinstance(p, str) else "<partition>" if p == {"Ref": "AWS::Partition"} else "<token>"
        for p in parts
    )


def dataprep_statements(app: SynthesizedApp) -> list[dict[str, Any]]:
    template = app.template_json("Dev", "Training")
    return role_statements(template, role_id(template, "DataprepRole"))


@pytest.fixture(scope="module")
def with_sources(
    stage_config: Callable[..., StageConfig], synth_stages: Callable[..., SynthesizedApp]
) -> list[dict[str, Any]]:
    return dataprep_statements(synth_stages(stage_config("Dev", label_sources=SOURCES)))


def test_the_role_reads_exactly_the_listed_prefixes(with_sources: list[dict[str, Any]]) -> None:
    reads = [
        rendered(r)
        for s in with_sources
        if s["Effect"] == "Allow" and any(a.startswith("s3:GetObject") for a in actions(s))
        for r in resources(s)
    ]
    outside_datasets = sorted(r for r in reads if "<token>" not in r)
    assert outside_datasets == [
        "arn:<partition>:s3:::coco-exports/cvat/*",
        "arn:<partition>:s3:::labelling-output-bucket/jobs/tools-2024/*",
    ]
    # the datasets bucket (its ARN is a token): its own objects (raw/ labels, and the datasets it writes)
    assert [r for r in reads if "<token>" in r and r != "<token>"] == ["<token>/*"]


def test_listing_is_limited_to_the_prefixes(with_sources: list[dict[str, Any]]) -> None:
    lists = [s for s in with_sources if "s3:ListBucket" in actions(s) and "Condition" in s]
    found = {rendered(s["Resource"]): s["Condition"]["StringLike"]["s3:prefix"] for s in lists}
    assert found == {
        "arn:<partition>:s3:::labelling-output-bucket": ["jobs/tools-2024/*"],
        "arn:<partition>:s3:::coco-exports": ["cvat/*"],
    }


def test_decrypt_is_granted_on_the_given_key_only(with_sources: list[dict[str, Any]]) -> None:
    decrypts = [r for s in with_sources if "kms:Decrypt" in actions(s) for r in resources(s)]
    assert LABEL_KEY in decrypts
    assert all(
        r == LABEL_KEY or not isinstance(r, str) for r in decrypts
    )  # the rest: the stage's own data key


def test_the_default_stage_reads_only_its_own_datasets_bucket(synth: SynthesizedApp) -> None:
    """raw/ (the labels) and the datasets it writes (any prefix outside raw/: out_check reads --out first)."""
    reads = [
        rendered(r)
        for s in dataprep_statements(synth)
        if any(a.startswith("s3:GetObject") for a in actions(s))
        for r in resources(s)
    ]
    objects = [r for r in reads if r != "<token>"]  # the bare token: the datasets bucket itself (listing)
    assert objects == ["<token>/*"]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3:/labelling-output-bucket/jobs/", "is not an S3 URI"),
        ("s3://labelling-output-bucket/jobs", "expected a prefix ending in '/'"),
        ("s3://Labels_Bucket/jobs/", "bucket 'Labels_Bucket'"),
    ],
)
def test_malformed_label_sources_are_refused(
    stage_config: Callable[..., StageConfig], uri: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        stage_config("Dev", label_sources=[{"uri": uri}])
