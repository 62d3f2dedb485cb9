"""SageMaker instance types: which families we know, which have GPUs, which have local NVMe storage.

One table, used by the launcher (training jobs) and by infra (endpoint configs): SageMaker rejects a volume KMS key
on instance types whose storage is local NVMe (it is encrypted by the instance's hardware module instead).
"""

from __future__ import annotations

import re

from app.contracts.errors import ContractError

_PATTERN = re.compile(
    r"^ml\.(?P<family>[a-z][a-z0-9-]*)\.(?P<size>(?:[0-9]+)?x?large|medium|small|micro|metal)$"
)

GPU_FAMILIES: frozenset[str] = frozenset(
    {"p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "g4dn", "g5", "g6", "g6e", "gr6"}
)
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
    """An instance type we do not recognise."""


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


def supports_volume_kms_key(instance_type: str) -> bool:
    """False where the storage is local NVMe and SageMaker rejects a volume KMS key."""
    return family(instance_type) not in LOCAL_NVME_FAMILIES
