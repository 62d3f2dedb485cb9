"""The instance-type table: GPU families with their real-time driver and InferenceAmiVersion choices, architectures,
and the check that a serve image's CUDA fits the driver it gets."""

from __future__ import annotations

import re

import pytest

from app.contracts import cuda, instance_types
from app.contracts.instance_types import (
    ARM64_FAMILIES,
    GPU_FAMILIES,
    GPU_FAMILY_TABLE,
    INFERENCE_AMIS,
    CudaVersion,
    InstanceTypeError,
    check_serving,
)
from infra.paths import REPO_ROOT

IMAGES_PY = REPO_ROOT / "infra" / "constructs" / "images.py"


def test_gpu_families_are_exactly_the_rows_of_the_gpu_table() -> None:
    assert set(GPU_FAMILY_TABLE) == GPU_FAMILIES


def test_every_ami_a_family_offers_is_a_known_inference_ami() -> None:
    for fam, row in GPU_FAMILY_TABLE.items():
        assert set(row.inference_amis) <= set(INFERENCE_AMIS), fam


@pytest.mark.parametrize("fam", sorted(f for f, r in GPU_FAMILY_TABLE.items() if r.inference))
def test_the_default_ami_of_every_serving_family_fits_the_serve_image(fam: str) -> None:
    instance = f"ml.{fam}.xlarge"
    ami = instance_types.default_inference_ami(instance)
    assert ami in GPU_FAMILY_TABLE[fam].inference_amis
    driver = check_serving(instance, ami, cuda.image_cuda("serve"))
    assert driver is not None and driver.cuda >= cuda.image_cuda("serve")


def test_a_serve_image_newer_than_the_driver_is_refused_naming_family_ami_and_versions() -> None:
    with pytest.raises(InstanceTypeError) as exc:
        check_serving("ml.g5.xlarge", "al2-ami-sagemaker-inference-gpu-2", CudaVersion(12, 4))
    message = str(exc.value)
    for part in ("CUDA 12.4", "family g5", "al2-ami-sagemaker-inference-gpu-2", "CUDA 12.2", "driver 535"):
        assert part in message


def test_the_family_default_driver_without_an_ami_is_too_old_for_a_cuda_12_image() -> None:
    with pytest.raises(InstanceTypeError, match=r"no InferenceAmiVersion.*NVIDIA driver 470 / CUDA 11\.4"):
        check_serving("ml.g5.xlarge", None, CudaVersion(12, 4))


@pytest.mark.parametrize(
    ("instance", "ami", "expected"),
    [
        ("ml.g5.xlarge", "al2-ami-sagemaker-inference-gpu-9", r"unknown InferenceAmiVersion"),
        ("ml.g5.xlarge", "al2023-ami-sagemaker-inference-gpu-4-1", r"not offered for the g5 family"),
        ("ml.c6i.xlarge", "al2-ami-sagemaker-inference-gpu-3-1", r"has no NVIDIA GPU: leave it unset"),
        ("ml.g6e.xlarge", None, r"not in SageMaker's real-time GPU driver table"),
    ],
)
def test_ami_choices_that_cannot_work_are_refused(instance: str, ami: str | None, expected: str) -> None:
    with pytest.raises(InstanceTypeError, match=expected):
        check_serving(instance, ami, CudaVersion(12, 4))


def test_cpu_instances_need_no_driver() -> None:
    assert check_serving("ml.c6i.xlarge", None, CudaVersion(12, 4)) is None


@pytest.mark.parametrize("fam", sorted(ARM64_FAMILIES))
def test_graviton_families_are_refused_because_every_image_is_amd64(fam: str) -> None:
    assert instance_types.architecture(f"ml.{fam}.xlarge") == "arm64"
    with pytest.raises(
        InstanceTypeError, match=r"Graviton \(arm64\).*linux/amd64 only.*e\.g\. ml\.\w+i\.xlarge"
    ):
        instance_types.check_architecture(f"ml.{fam}.xlarge")


def test_x86_families_pass_the_architecture_check() -> None:
    for instance in ("ml.c6i.large", "ml.g5.xlarge", "ml.m5.large"):
        instance_types.check_architecture(instance)


def test_the_image_architecture_is_the_platform_infra_builds() -> None:
    source = IMAGES_PY.read_text()
    assert instance_types.IMAGE_ARCHITECTURE == "x86_64"
    assert re.findall(r"ecr_assets\.Platform\.(\w+)", source) == ["LINUX_AMD64"]


@pytest.mark.parametrize(("text", "expected"), [("12.4", "12.4"), ("12.4.1", "12.4"), ("13.0.2", "13.0")])
def test_cuda_versions_parse_and_compare(text: str, expected: str) -> None:
    assert str(CudaVersion.parse(text)) == expected
    assert CudaVersion(12, 2) < CudaVersion(12, 4) < CudaVersion(13, 0)


def test_a_malformed_cuda_version_is_refused() -> None:
    with pytest.raises(InstanceTypeError, match="not a CUDA version"):
        CudaVersion.parse("twelve")


def test_a_gpu_family_marked_not_for_training_is_refused_for_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    table = dict(GPU_FAMILY_TABLE)
    table["p3"] = dataclasses.replace(table["p3"], training=False)
    monkeypatch.setattr(instance_types, "GPU_FAMILY_TABLE", table)
    with pytest.raises(InstanceTypeError, match=r"'ml\.p3\.2xlarge': GPU family not allowed for training"):
        instance_types.check_training("ml.p3.2xlarge")
    instance_types.check_training("ml.g5.xlarge")
    instance_types.check_training("ml.c6i.xlarge")


def test_gpu_count_table_covers_every_gpu_family() -> None:
    assert set(instance_types.GPU_COUNTS) == GPU_FAMILIES


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [
        ("ml.g5.xlarge", 1),
        ("ml.g5.16xlarge", 1),
        ("ml.g5.12xlarge", 4),
        ("ml.g5.48xlarge", 8),
        ("ml.p4d.24xlarge", 8),
        ("ml.p3.8xlarge", 4),
        ("ml.c6i.xlarge", 0),
        ("ml.inf2.xlarge", 0),
        ("ml.g5.3xlarge", None),  # a size the table does not list is unknown, not guessed
    ],
)
def test_gpu_count_per_instance_type(instance_type: str, gpus: int | None) -> None:
    assert instance_types.gpu_count(instance_type) == gpus
