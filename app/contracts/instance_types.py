"""SageMaker instance types: which families we know, which have GPUs (and how many per size), which have local NVMe
storage, which CPU architecture each runs, and what NVIDIA driver/CUDA each GPU family gets for real-time inference.

One table, used by the launcher (training jobs) and by infra (endpoint configs): SageMaker rejects a volume KMS key
on instance types whose storage is local NVMe (it is encrypted by the instance's hardware module instead); every
image is built for linux/amd64 only, so Graviton (arm64) families are refused; a GPU endpoint's image must not need
more CUDA than the driver of its InferenceAmiVersion gives (``check_serving``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from app.contracts.errors import ContractError

_PATTERN = re.compile(
    r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>(?:[0-9]+)?x?large|medium|small|micro|metal)$"
)

GPU_FAMILIES: frozenset[str] = frozenset(
    {"p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "g4dn", "g5", "g6", "g6e", "gr6"}
)  # the keys of GPU_FAMILY_TABLE below (a test keeps them equal)
ACCELERATOR_FAMILIES: frozenset[str] = frozenset({"inf1", "inf2", "trn1", "trn1n", "trn2"})
CPU_FAMILIES: frozenset[str] = frozenset(
    {
        "t2",
        "t3",
        "m4",
        "m5",
        "m5d",
        "m6i",
        "m6id",
        "m7i",
        "c4",
        "c5",
        "c5d",
        "c5n",
        "c6i",
        "c6id",
        "c7i",
        "r5",
        "r5d",
        "r6i",
        "r6id",
        "r7i",
        "m6g",
        "c6g",
        "c7g",
        "r6g",
        "r7g",
    }
)
KNOWN_FAMILIES: frozenset[str] = GPU_FAMILIES | ACCELERATOR_FAMILIES | CPU_FAMILIES

# Families whose instance storage is local NVMe: no VolumeKmsKeyId / KmsKeyId for the storage volume.
LOCAL_NVME_FAMILIES: frozenset[str] = frozenset(
    {
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "gr6",
        "m5d",
        "m6id",
        "c5d",
        "c6id",
        "r5d",
        "r6id",
        "trn1",
        "trn1n",
        "trn2",
    }
)


class InstanceTypeError(ContractError):
    """An instance type we do not recognise, or one our images cannot run on."""


# --- CPU architecture -------------------------------------------------------------------------------------------
Architecture = Literal["x86_64", "arm64"]
# Every image is built for linux/amd64 (infra/constructs/images.py, Platform.LINUX_AMD64); an arm64 host cannot
# start it. AWS Graviton families: https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints-graviton.html
# (read 2026-11-30).
IMAGE_ARCHITECTURE: Architecture = "x86_64"
ARM64_FAMILIES: frozenset[str] = frozenset({"m6g", "c6g", "c7g", "r6g", "r7g"})


# --- NVIDIA driver / CUDA ---------------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class CudaVersion:
    """A CUDA major.minor (``12.4``): what a driver supports, or what an image needs."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> CudaVersion:
        """``"12.4"`` or ``"12.4.1"`` -> 12.4; raise InstanceTypeError for anything else."""
        match = re.match(r"^(\d+)\.(\d+)(?:\.\d+)?$", text.strip())
        if not match:
            raise InstanceTypeError(f"'{text}' is not a CUDA version (expected e.g. 12.4 or 12.4.1)")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class GpuDriver:
    """An NVIDIA driver branch and the highest CUDA version it supports."""

    branch: int
    cuda: CudaVersion

    def __str__(self) -> str:
        return f"NVIDIA driver {self.branch} / CUDA {self.cuda}"


def _driver(branch: int, cuda: str) -> GpuDriver:
    return GpuDriver(branch, CudaVersion.parse(cuda))


# ProductionVariant.InferenceAmiVersion: each value and the driver/CUDA it provides. Source: the SageMaker API
# reference, ProductionVariant (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html)
# and the same text in botocore's sagemaker service model shipped with boto3 1.44.5 (read 2026-11-30). The "-1"
# AMIs run an NVIDIA Container Toolkit with CUDA-compat mounting disabled.
INFERENCE_AMIS: dict[str, GpuDriver] = {
    "al2-ami-sagemaker-inference-gpu-2": _driver(535, "12.2"),
    "al2-ami-sagemaker-inference-gpu-2-1": _driver(535, "12.2"),
    "al2-ami-sagemaker-inference-gpu-3-1": _driver(550, "12.4"),
    "al2023-ami-sagemaker-inference-gpu-4-1": _driver(580, "13.0"),
}
_AL2_GPU = (
    "al2-ami-sagemaker-inference-gpu-2",
    "al2-ami-sagemaker-inference-gpu-2-1",
    "al2-ami-sagemaker-inference-gpu-3-1",
)
# Our default for every GPU family: the newest AL2 GPU AMI (driver 550 / CUDA 12.4), which the serve image targets.
DEFAULT_INFERENCE_AMI = "al2-ami-sagemaker-inference-gpu-3-1"


@dataclass(frozen=True)
class GpuFamily:
    """What SageMaker gives a GPU family: the real-time driver without an InferenceAmiVersion (None: the family is
    not in AWS's real-time table, so we do not serve on it), and the InferenceAmiVersion values it accepts."""

    gpu: str
    realtime_default: GpuDriver | None
    inference_amis: tuple[str, ...] = ()
    training: bool = True

    @property
    def inference(self) -> bool:
        return self.realtime_default is not None and bool(self.inference_amis)


# Real-time defaults: "Best practices to minimize interruptions during GPU driver upgrades", table "Current versions
# and supported instance families" (https://docs.aws.amazon.com/sagemaker/latest/dg/inference-gpu-drivers.html,
# read 2026-11-30): 470 / CUDA 11.4 on p3, p4d, p4de, g4dn, g5; 535 / 12.2 on p5, g6; 550 / 12.4 on p5e, p5en.
# AMI choices: al2-ami-sagemaker-inference-gpu-2 lists ml.g4dn, g5, g6, p3, p4d, p4de, p5 as supported (same API
# reference, botocore 1.36.20 text); we assume the -2-1 and -3-1 AMIs cover the same families (plus p5e/p5en, whose
# default driver is already 550). al2023-...-gpu-4-1 (580 / 13.0) is a valid API value, but the pages read do not
# say which families take it: allowed on none until that is confirmed.
# Training: SageMaker publishes no driver table for training hosts (none found, 2026-11-30); the train image checks
# the driver at start-up instead (app/training/device.py) and fails within a minute when it cannot use the GPU.
GPU_FAMILY_TABLE: dict[str, GpuFamily] = {
    "p3": GpuFamily("NVIDIA V100", _driver(470, "11.4"), _AL2_GPU),
    "p3dn": GpuFamily("NVIDIA V100", None),
    "p4d": GpuFamily("NVIDIA A100", _driver(470, "11.4"), _AL2_GPU),
    "p4de": GpuFamily("NVIDIA A100 80GB", _driver(470, "11.4"), _AL2_GPU),
    "p5": GpuFamily("NVIDIA H100", _driver(535, "12.2"), _AL2_GPU),
    "p5e": GpuFamily("NVIDIA H200", _driver(550, "12.4"), ("al2-ami-sagemaker-inference-gpu-3-1",)),
    "p5en": GpuFamily("NVIDIA H200", _driver(550, "12.4"), ("al2-ami-sagemaker-inference-gpu-3-1",)),
    "g4dn": GpuFamily("NVIDIA T4", _driver(470, "11.4"), _AL2_GPU),
    "g5": GpuFamily("NVIDIA A10G", _driver(470, "11.4"), _AL2_GPU),
    "g6": GpuFamily("NVIDIA L4", _driver(535, "12.2"), _AL2_GPU),
    "g6e": GpuFamily("NVIDIA L40S", None),  # not in the real-time driver table read
    "gr6": GpuFamily("NVIDIA L4", None),  # not in the real-time driver table read
}


# GPU families on which an int8 (QDQ) graph has been measured with `make gpu-check` (accuracy and speed against fp32 on
# that GPU, figures recorded in docs/benchmarks.md). Empty: none yet. Until a family is here, synth refuses
# endpoint.precision int8 on it: "Due to a limitation of ONNX Runtime, it is not possible to run quantized models on
# CUDAExecutionProvider" (Hugging Face Optimum, "Accelerated inference on NVIDIA GPUs"), so the QDQ graph would run
# its convolutions dequantized or on the CPU, unmeasured.
GPU_INT8_MEASURED: frozenset[str] = frozenset()

# --- GPUs per instance ------------------------------------------------------------------------------------------
# NVIDIA GPUs of each size of each GPU family. Sources (read 2026-11-30): AWS Batch User Guide, "Run GPU jobs"
# (https://docs.aws.amazon.com/batch/latest/userguide/gpu-jobs.html), its table of GPU instance types and their GPUs
# (g4dn, g5, g6, p3, p3dn, p4d, p5), and Amazon EC2 Instance Types, "Accelerated computing instance specifications"
# (https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html) for p4de, p5e, p5en, g6e and gr6. A size missing
# here is unknown (gpu_count returns None), not assumed to have one GPU.
_ONE = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1}
GPU_COUNTS: dict[str, dict[str, int]] = {
    "p3": {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8},
    "p3dn": {"24xlarge": 8},
    "p4d": {"24xlarge": 8},
    "p4de": {"24xlarge": 8},
    "p5": {"48xlarge": 8},
    "p5e": {"48xlarge": 8},
    "p5en": {"48xlarge": 8},
    "g4dn": {**_ONE, "12xlarge": 4},
    "g5": {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6": {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "g6e": {**_ONE, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8},
    "gr6": {"4xlarge": 1, "8xlarge": 1},
}  # keys: GPU_FAMILIES (a test keeps them equal)


def family(instance_type: str) -> str:
    """``ml.g5.2xlarge`` -> ``g5``; raise InstanceTypeError for a malformed or unknown type."""
    match = _PATTERN.match(instance_type)
    if not match:
        raise InstanceTypeError(
            f"'{instance_type}' is not a SageMaker instance type (expected e.g. ml.g5.xlarge)"
        )
    fam = match.group("family")
    if fam not in KNOWN_FAMILIES:
        raise InstanceTypeError(
            f"'{instance_type}': unknown instance family '{fam}'; expected one of {sorted(KNOWN_FAMILIES)}"
        )
    return fam


def is_gpu(instance_type: str) -> bool:
    return family(instance_type) in GPU_FAMILIES


def gpu_count(instance_type: str) -> int | None:
    """NVIDIA GPUs of ``instance_type``: 0 for CPU and Neuron families, None for a GPU size the table lacks."""
    fam = family(instance_type)
    if fam not in GPU_FAMILIES:
        return 0
    return GPU_COUNTS[fam].get(instance_type.rsplit(".", 1)[-1])


def supports_volume_kms_key(instance_type: str) -> bool:
    """False where the storage is local NVMe and SageMaker rejects a volume KMS key."""
    return family(instance_type) not in LOCAL_NVME_FAMILIES


def architecture(instance_type: str) -> Architecture:
    """``ml.c7g.xlarge`` -> ``arm64`` (Graviton); every other known family is ``x86_64``."""
    return "arm64" if family(instance_type) in ARM64_FAMILIES else "x86_64"


def check_architecture(instance_type: str) -> None:
    """Raise InstanceTypeError when the instance cannot run our linux/amd64 images (Graviton families)."""
    arch = architecture(instance_type)
    if arch != IMAGE_ARCHITECTURE:
        raise InstanceTypeError(
            f"'{instance_type}' is an AWS Graviton ({arch}) instance, but every image of this platform is built for "
            f"linux/amd64 only, so it could not start there; pick an {IMAGE_ARCHITECTURE} family instead (e.g. "
            f"ml.{family(instance_type).replace('g', 'i', 1)}.{instance_type.rsplit('.', 1)[-1]})"
        )


def gpu_family(instance_type: str) -> GpuFamily | None:
    """The GPU table row of the instance's family; None for CPU and accelerator (Neuron) families."""
    return GPU_FAMILY_TABLE.get(family(instance_type))


def default_inference_ami(instance_type: str) -> str | None:
    """The InferenceAmiVersion a GPU endpoint gets unless its config names one; None off GPU."""
    row = gpu_family(instance_type)
    if row is None or not row.inference:
        return None
    return DEFAULT_INFERENCE_AMI if DEFAULT_INFERENCE_AMI in row.inference_amis else row.inference_amis[-1]


def check_training(instance_type: str) -> None:
    """Raise InstanceTypeError for a GPU family we do not train on (the table's ``training`` column)."""
    row = gpu_family(instance_type)
    if row is not None and not row.training:
        allowed = sorted(f for f, r in GPU_FAMILY_TABLE.items() if r.training)
        raise InstanceTypeError(
            f"'{instance_type}': GPU family not allowed for training; expected one of {allowed}"
        )


# The training container trains on one instance (all of its GPUs): app/training/sagemaker.py refuses more hosts;
# the runner Lambda (a request's instance_count) and the stage config (synth) refuse more before provisioning.
MAX_TRAINING_INSTANCES = 1


def _training_instance_count(count: int) -> int:
    if count > MAX_TRAINING_INSTANCES:
        raise ValueError(
            f"instance_count {count}: the training container runs on one instance only; multi-GPU on one "
            "instance is the supported scale-up: pick a larger ml.g5/ml.p4d instance_type instead"
        )
    return count


TrainingInstanceCount = Annotated[int, Field(ge=1), AfterValidator(_training_instance_count)]


def check_serving(instance_type: str, ami: str | None, image_cuda: CudaVersion) -> GpuDriver | None:
    """The driver a real-time variant of ``instance_type`` gets with InferenceAmiVersion ``ami`` (None off GPU).

    Raise InstanceTypeError when the family may not serve, the AMI is unknown or not offered for the family, or
    the serve image needs more CUDA (``image_cuda``) than that driver supports (SageMaker would fail the deployment
    with CannotStartContainerError)."""
    fam = family(instance_type)
    row = GPU_FAMILY_TABLE.get(fam)
    if row is None:
        if ami is not None:
            raise InstanceTypeError(
                f"InferenceAmiVersion '{ami}' is for GPU instances; '{instance_type}' has no NVIDIA GPU: leave it unset"
            )
        return None
    if not row.inference:
        raise InstanceTypeError(
            f"'{instance_type}': the {fam} family ({row.gpu}) is not in SageMaker's real-time GPU driver table, so "
            f"its driver/CUDA is unknown; serve on one of {sorted(f for f, r in GPU_FAMILY_TABLE.items() if r.inference)}"
        )
    if ami is None:
        driver = row.realtime_default
        assert driver is not None
        where = "no InferenceAmiVersion (the family's default driver)"
    elif ami not in INFERENCE_AMIS:
        raise InstanceTypeError(
            f"unknown InferenceAmiVersion '{ami}'; expected one of {sorted(INFERENCE_AMIS)}"
        )
    elif ami not in row.inference_amis:
        raise InstanceTypeError(
            f"InferenceAmiVersion '{ami}' is not offered for the {fam} family; expected one of {list(row.inference_amis)}"
        )
    else:
        driver = INFERENCE_AMIS[ami]
        where = f"InferenceAmiVersion {ami}"
    if image_cuda > driver.cuda:
        raise InstanceTypeError(
            f"the serve image needs CUDA {image_cuda}, but '{instance_type}' (family {fam}) with {where} gets "
            f"{driver}; SageMaker would fail the deployment with CannotStartContainerError. Pick an "
            f"InferenceAmiVersion whose CUDA is >= {image_cuda} (one of "
            f"{[a for a in row.inference_amis if INFERENCE_AMIS[a].cuda >= image_cuda]}) or rebuild the image"
        )
    return driver
