"""What starts a training job, parsed before any AWS call: every refusal names the field and what to do instead."""

from __future__ import annotations

import pytest

from app.launcher.trigger import RequestError, parse_event
from tests.app.launcher.events import s3_event
from tests.app.launcher.stage_settings import DATASET_URI


def test_graviton_instance_override_is_rejected_naming_the_architecture() -> None:
    with pytest.raises(RequestError, match=r"instance_type.*Graviton \(arm64\).*linux/amd64"):
        parse_event({"dataset_uri": DATASET_URI, "instance_type": "ml.m6g.xlarge"})


def test_dataset_event_without_etag_is_rejected_naming_the_field() -> None:
    event = s3_event("datasets/v-3f2a1b9c/dataset.json")
    del event["detail"]["object"]["etag"]
    with pytest.raises(RequestError) as raised:
        parse_event(event)
    assert raised.value.field == "detail.object.etag"


def test_operator_cannot_set_the_event_only_dataset_version() -> None:
    with pytest.raises(RequestError, match="run_label") as raised:
        parse_event({"dataset_uri": DATASET_URI, "dataset_version": "x"})
    assert raised.value.field == "dataset_version"


def test_dataset_event_and_operator_request_are_told_apart() -> None:
    request, trigger = parse_event(s3_event("datasets/v-3f2a1b9c/dataset.json", etag="e"))
    assert (request.dataset_uri, request.dataset_version, trigger) == (DATASET_URI, "e", "dataset-event")
    request, trigger = parse_event({"dataset_uri": DATASET_URI})
    assert (request.dataset_uri, request.dataset_version, trigger) == (DATASET_URI, None, "operator")
