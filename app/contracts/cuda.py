"""The CUDA seam between our GPU images and the hosts that run them.

``IMAGE_CUDA`` is the one declaration of the CUDA version each GPU image is built on: infra passes it to the
Dockerfile as build argument ``CUDA_VERSION`` (the ``nvidia/cuda`` base image tag, see infra/constructs/images.py)
and checks it against the driver of the instance at synth (``app.contracts.instance_types.check_serving``). At run
time the images read it back from the ``CUDA_VERSION`` variable the base image sets, and ask the host's driver what
it supports (``driver_cuda``, through libcuda's ``cuDriverGetVersion``: standard library only, no CUDA toolkit).
"""

from __future__ import annotations

import ctypes
import os
from typing import Literal

from app.contracts.instance_types import CudaVersion

GpuImage = Literal["serve", "train"]

# serve: ONNX Runtime's CUDA 12 build on nvidia/cuda 12.4 + cuDNN 9, within driver 550 (InferenceAmiVersion
#        al2-ami-sagemaker-inference-gpu-3-1, the default for GPU endpoints).
# train: PyTorch 2.14's CUDA 12.6 wheels (its legacy CUDA 12 line: pytorch/pytorch RELEASE.md, "Release
#        Compatibility Matrix", read 2026-11-30) on nvidia/cuda 12.6.
IMAGE_CUDA: dict[GpuImage, str] = {"serve": "12.4.1", "train": "12.6.3"}
BUILD_ARG = "CUDA_VERSION"  # the Dockerfiles' ARG; nvidia/cuda images also set it as an environment variable


def image_cuda(image: GpuImage) -> CudaVersion:
    """The CUDA major.minor a GPU image needs from the host's driver."""
    return CudaVersion.parse(IMAGE_CUDA[image])


def build_args(image: GpuImage) -> dict[str, str]:
    """Docker build arguments that put the declared CUDA into the image (its base image tag)."""
    return {BUILD_ARG: IMAGE_CUDA[image]}


def running_image_cuda() -> CudaVersion | None:
    """The CUDA this container was built on (``CUDA_VERSION`` of the nvidia/cuda base); None outside such images."""
    value = os.environ.get(BUILD_ARG, "")
    try:
        return CudaVersion.parse(value) if value else None
    except ValueError:
        return None


def driver_cuda() -> CudaVersion | None:
    """The highest CUDA version the host's NVIDIA driver supports; None when no driver is visible (no libcuda)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int(0)
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return CudaVersion(version.value // 1000, version.value % 1000 // 10)


def explain_no_gpu(*, driver: CudaVersion | None, needed: CudaVersion | None) -> str:
    """Why a process that should run on CUDA cannot, from what the driver and the image say."""
    if driver is None:
        return (
            "no NVIDIA driver is visible in the container (libcuda.so.1 cannot be loaded): the instance has no "
            "GPU, or the GPU was not passed to the container"
        )
    if needed is not None and needed > driver:
        return (
            f"driver/CUDA mismatch: the host's NVIDIA driver supports CUDA {driver}, but this image is built on "
            f"CUDA {needed}; use an instance/AMI whose driver supports CUDA >= {needed} (for endpoints: "
            "endpoint.inference_ami_version) or rebuild the image on an older CUDA (app/contracts/cuda.py)"
        )
    return (
        f"the NVIDIA driver supports CUDA {driver} (image built on CUDA {needed or 'unknown'}), yet the CUDA "
        "libraries did not initialise; see the errors logged above (missing CUDA/cuDNN library, or the GPU is busy "
        "or faulty)"
    )
