"""A GPU instance trains on its GPU, or the job fails at once: never a g5 job crawling on a few vCPUs until its time
limit because torch could not use the driver.

SageMaker tells the container its instance type in ``/opt/ml/input/config/resourceconfig.json``
(``current_instance_type``, read by app.training.sagemaker); the SageMaker training toolkit's
``SM_CURRENT_INSTANCE_TYPE`` (app.training.environment) is honoured when that file does not say. On a GPU instance type
with no CUDA device visible to torch, ``check`` raises DeviceError (a ContractError: run.py writes it to
``<opt_ml>/output/failure`` and exits 1) naming the driver/CUDA mismatch. Called first thing by run.train, so the job
fails within seconds of starting.
"""

from __future__ import annotations

from app.contracts import cuda, instance_types
from app.contracts.errors import ContractError
from app.contracts.instance_types import CudaVersion
from app.training.environment import TrainingEnvironment
from app.training.sagemaker import TrainingConfig


class DeviceError(ContractError):
    """A GPU instance whose GPU this container cannot use."""


def instance_type(config: TrainingConfig, environment: TrainingEnvironment) -> str | None:
    """The instance type SageMaker runs this job on; None for local runs that do not say."""
    return config.instance_type or environment.instance_type


def check(itype: str | None, device: str) -> str:
    """One log line about the device; raise DeviceError when a GPU instance type has no usable CUDA device.

    ``itype`` is :func:`instance_type`; ``device`` is the ``device`` hyperparameter: an explicit ``cpu`` is the
    caller's choice and is respected."""
    if itype is None:
        return "[device] instance type not given (local run): no GPU required"
    try:
        gpu = instance_types.is_gpu(itype)
    except instance_types.InstanceTypeError:
        return f"[device] {itype}: not in our instance table; no GPU required"
    if not gpu:
        return f"[device] {itype} has no NVIDIA GPU: training on the CPU"
    if device == "cpu":
        return (
            f"[device] WARNING {itype} has a GPU, but hyperparameter device=cpu: training on the CPU as asked"
        )
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    driver = cuda.driver_cuda()
    built = CudaVersion.parse(torch.version.cuda) if torch.version.cuda else cuda.running_image_cuda()
    if count == 0:
        raise DeviceError(
            f"{itype} is a GPU instance, but torch {torch.__version__} sees no CUDA device, so training would run "
            f"on the CPU until its time limit; refusing. Reason: {cuda.explain_no_gpu(driver=driver, needed=built)}"
        )
    return (
        f"[device] {itype}: {count} CUDA device(s) ({torch.cuda.get_device_name(0)}); torch {torch.__version__} "
        f"built on CUDA {built}, driver supports CUDA {driver}"
    )
