"""`make gpu-check`: the GPU path on a machine with an NVIDIA GPU, through the entrypoints the containers run.

1. generate a tiny labelled set (app.dataprep.synthetic) and prepare it (``python -m app.dataprep``);
2. train one short epoch on ``cuda:0`` (``python -m app.training --opt-ml DIR``, with SageMaker's resource config
   naming a GPU instance type, so the start-up device check runs as on SageMaker);
3. serve the artifact with ``SERVING_DEVICE=cuda`` (``python -m app.serving``) and assert from the server's own
   "model loaded" log line that ONNX Runtime runs it on CUDAExecutionProvider (the server only answers /ping 200
   when it does);
4. print GPU vs CPU p50 latency of the same image (a CPU server on the same artifact), and the GPU server's
   throughput at batch 1 and at the largest batch a request may carry (SERVING_MAX_IMAGES' default).

On a machine without an NVIDIA driver it says so and exits 0 without measuring anything. ``--workdir`` is the check's
own folder, marked ``.gpu-check-workdir``: it replaces its sub-folders there on the next run, and refuses (before
anything else) a non-empty folder it did not create. Imports only the standard library and app.contracts at module
level; everything else runs in the child processes.

    python -m scripts.gpu_check [--workdir DIR] [--requests N]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts import cuda
from infra.paths import REPO_ROOT
from scripts.lib import cli, folders
from scripts.lib.cli import CheckFailed, command, last_lines, positive_int

WORKDIR_MARKER = ".gpu-check-workdir"
GPU_INSTANCE = "ml.g5.xlarge"  # what resourceconfig.json says, so the training device check insists on a GPU
CUDA_PROVIDER = "CUDAExecutionProvider"


def _say(text: str) -> None:
    print(text, flush=True)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("YOLO_OFFLINE", "1")
    env.setdefault("YOLO_AUTOINSTALL", "false")
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _run(cmd: list[str], *, what: str) -> str:
    _say(f"  $ {' '.join(cmd)}")
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CheckFailed(f"{what} exited with {proc.returncode}:\n{last_lines(proc.stdout, 15)}")
    return proc.stdout


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the check (None when it has an NVIDIA driver)."""
    if cuda.driver_cuda() is None:
        return "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)"
    return None


def prepare(workdir: Path, *, images: int) -> Path:
    """Synthetic Ground Truth set -> dataset -> an /opt/ml tree for one short epoch on cuda:0."""
    raw, data, opt_ml = workdir / "groundtruth", workdir / "dataset", workdir / "opt_ml"
    for path in (raw, data, opt_ml):
        shutil.rmtree(path, ignore_errors=True)
    _run(
        [sys.executable, "-m", "app.dataprep.synthetic", "--out", str(raw), "--images", str(images)],
        what="generating labels",
    )
    manifest = next(raw.rglob("output.manifest"))
    _run(
        [
            sys.executable, "-m", "app.dataprep", "--manifest", str(manifest),
            "--image-root", str(raw / "images"), "--out", str(data), "--val-fraction", "0.2",
        ],
        what="data prep",
    )  # fmt: skip
    shutil.copytree(data, opt_ml / "input" / "data" / "dataset")
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {"epochs": "1", "imgsz": "320", "batch": "16", "workers": "0", "device": "0"}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"dataset": {"TrainingInputMode": "File"}}))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type": GPU_INSTANCE})
    )
    return opt_ml


def train(opt_ml: Path) -> Path:
    started = time.monotonic()
    log = _run([sys.executable, "-m", "app.training", "--opt-ml", str(opt_ml)], what="training")
    device_line = next((line for line in log.splitlines() if line.startswith("[device]")), "")
    if "CUDA device" not in device_line:
        raise CheckFailed(f"training did not report a CUDA device: {device_line or 'no [device] line'}")
    model_json = json.loads((opt_ml / "model" / "model.json").read_text())
    _say(
        f"  {device_line}\n  one epoch in {time.monotonic() - started:.0f} s; model.json: {model_json['name']}"
    )
    return opt_ml / "model"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def server(model_dir: Path, log_path: Path, *, device: str, timeout: float = 120) -> Iterator[str]:
    """``python -m app.serving`` on 127.0.0.1 with SERVING_DEVICE=device, until /ping says 200."""
    port = _free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.serving", "--model-dir", str(model_dir), "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=REPO_ROOT, env=_env(SERVING_DEVICE=device), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while _get_or_none(f"{url}/ping") != 200:
            if proc.poll() is not None or time.monotonic() - started > timeout:
                raise CheckFailed(
                    f"the {device} server never answered /ping 200; its log ({log_path}) ends:\n"
                    + last_lines(log_path.read_text(), 10)
                )
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)
    except OSError:
        return None


def providers_used(log_path: Path) -> list[str]:
    """The providers of the server's "model loaded" log line (what session.get_providers() returned)."""
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "model loaded" in json.dumps(record):
            found = _find(record, "providers")
            if isinstance(found, list):
                return [str(p) for p in found]
    raise CheckFailed(f"{log_path}: no 'model loaded' line with the providers")


def _find(value: object, key: str) -> object:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for item in value.values():
            found = _find(item, key)
            if found is not None:
                return found
    return None


def _post(url: str, body: bytes, content_type: str) -> float:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CheckFailed(f"/invocations answered {exc.code}: {exc.read()[:300]!r}") from None
    elapsed = time.perf_counter() - started
    if "predictions" not in payload:
        raise CheckFailed(f"/invocations answered {payload}")
    return elapsed


def held_out_image(dataset: Path) -> bytes:
    """A validation JPEG of the prepared dataset (the same image for every measurement)."""
    found = sorted(p for p in (dataset / "images" / "val").iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    if not found:
        raise CheckFailed(f"{dataset / 'images' / 'val'}: no JPEG to measure with")
    return found[0].read_bytes()


def p50_ms(url: str, image: bytes, requests: int) -> float:
    for _ in range(3):  # warm-up: allocator, cuDNN algorithm choice
        _post(url, image, "image/jpeg")
    return statistics.median(_post(url, image, "image/jpeg") for _ in range(requests)) * 1000


def throughput(url: str, image: bytes, *, batch: int, requests: int) -> float:
    """Images per second, one request at a time, ``batch`` images per request."""
    if batch == 1:
        body, kind = image, "image/jpeg"
    else:
        encoded = base64.b64encode(image).decode()
        body, kind = json.dumps({"images": [encoded] * batch}).encode(), "application/json"
    _post(url, body, kind)
    started = time.perf_counter()
    for _ in range(requests):
        _post(url, body, kind)
    return batch * requests / (time.perf_counter() - started)


def largest_batch() -> int:
    from app.serving.settings import ServingSettings  # late: pydantic-settings is only needed on this path

    return int(ServingSettings.model_fields["max_images"].default)


def parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m scripts.gpu_check",
        description="Train one epoch on cuda:0, serve on CUDA, assert the providers, print GPU vs CPU figures. "
        "Exits 0 without measuring on a machine without an NVIDIA GPU.",
    )
    parser.add_argument(
        "--workdir",
        type=cli.directory_or_new,
        help="keep the run here: a new or empty folder, or an earlier gpu_check's (default: a temporary folder)",
    )
    parser.add_argument("--requests", type=positive_int, default=50, help="requests per measurement")
    parser.add_argument("--images", type=positive_int, default=60, help="synthetic images to train on")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workdir:  # before anything else: a folder it would clear must be its own
        folders.check_own_folder(args.workdir, WORKDIR_MARKER, option="--workdir")

    reason = no_gpu_reason()
    if reason:
        _say(f"gpu-check: skipped, {reason}; nothing was trained or measured.")
        return 0
    _say(f"gpu-check: NVIDIA driver supports CUDA {cuda.driver_cuda()}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    folders.claim_own_folder(
        workdir, WORKDIR_MARKER, option="--workdir", command="python -m scripts.gpu_check"
    )

    _say("1. data")
    opt_ml = prepare(workdir, images=args.images)
    _say("2. one epoch on cuda:0 through the training entrypoint")
    model_dir = train(opt_ml)
    image = held_out_image(opt_ml / "input" / "data" / "dataset")

    _say("3. serving with SERVING_DEVICE=cuda")
    batch = largest_batch()
    with server(model_dir, workdir / "serve-cuda.log", device="cuda") as url:
        used = providers_used(workdir / "serve-cuda.log")
        if not used or used[0] != CUDA_PROVIDER:
            raise CheckFailed(f"ONNX Runtime runs the model with {used}, not {CUDA_PROVIDER} first")
        _say(f"  providers actually used: {used}")
        gpu_p50 = p50_ms(url, image, args.requests)
        gpu_b1 = throughput(url, image, batch=1, requests=args.requests)
        gpu_bmax = throughput(url, image, batch=batch, requests=max(1, args.requests // 5))
    with server(model_dir, workdir / "serve-cpu.log", device="cpu") as url:
        cpu_p50 = p50_ms(url, image, args.requests)

    _say("4. figures (same artifact, same image, one request at a time, end to end over HTTP)")
    _say(f"  p50 latency  GPU {gpu_p50:7.1f} ms   CPU {cpu_p50:7.1f} ms   CPU/GPU {cpu_p50 / gpu_p50:5.1f}x")
    _say(f"  GPU throughput  batch 1: {gpu_b1:7.1f} images/s   batch {batch}: {gpu_bmax:7.1f} images/s")
    _say(f"gpu-check: passed (work in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
