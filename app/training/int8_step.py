"""The int8 step, isolated: quantization, evaluation and gate run in a child process, so that nothing the optional
step does - an exception, a crash in native code, the kernel's OOM killer - costs the fp32 model the job trained.

The parent writes the request as JSON, starts ``python -m app.training.int8_step REQUEST RESULT`` and waits; the
child writes model.int8.onnx (when the gate ships it) and the Int8Result as JSON. Anything else - a non-zero exit,
a signal, a missing or unreadable result - becomes an Int8Result with ``status: failed`` and the reason, the int8
file is removed, and the job goes on to ship fp32. The child's peak RSS is recorded (its VmHWM), which is what the
instance's memory must hold on top of the parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import app
from app.contracts.artifact import INT8_ONNX, Int8Result

POLL_S = 0.5  # how often the parent samples the child's peak memory
_KILLED_HINT = {
    signal.SIGKILL: "the kernel's OOM killer sends SIGKILL when the instance runs out of memory",
    signal.SIGSEGV: "a crash in native code",
    signal.SIGABRT: "a native library aborted",
}


@dataclass(frozen=True)
class Int8Request:
    """What the child needs (paths as strings: this crosses a process boundary as JSON)."""

    model_dir: str
    fp32_name: str
    input_name: str
    imgsz: int
    data_yaml: str
    class_names: list[str]
    calibration_folder: str
    calibration_limit: int
    max_drop: float
    max_class_drop: float
    min_val_images: int
    float_head: bool = True


def failed(
    request: Int8Request, reason: str, *, seconds: float, peak_rss_mib: float | None = None
) -> Int8Result:
    """The Int8Result of a step that did not finish: nothing shipped, the reason kept."""
    (Path(request.model_dir) / INT8_ONNX).unlink(missing_ok=True)
    return Int8Result(
        file=None,
        shipped=False,
        status="failed",
        reason=f"failed: {reason}; serving uses fp32",
        max_map50_95_drop=request.max_drop,
        max_class_drop=request.max_class_drop,
        seconds=round(seconds, 1),
        peak_rss_mib=peak_rss_mib,
    )


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident memory (VmHWM), 0.0 once it is gone. Not getrusage's ru_maxrss: after fork + exec
    that counts the parent's resident memory at the fork (the whole training process), not the child's own."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return round(kib / 1024, 1)


def _why(code: int, result: Path) -> str:
    if code < 0:
        sig = signal.Signals(-code)
        hint = _KILLED_HINT.get(sig)
        return f"the int8 process was killed by {sig.name}" + (f" ({hint})" if hint else "")
    if result.is_file():
        try:
            error = json.loads(result.read_text()).get("error")
        except (OSError, ValueError):
            error = None
        if error:
            return str(error)
    return f"the int8 process exited {code} without a result"


def run_int8(request: Int8Request, *, log: Callable[[str], None] = print) -> Int8Result:
    """Run the int8 step in a child process; always return an Int8Result (never raise for the step's failure)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=Path(request.model_dir).parent) as tmp:
        request_file, result_file = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_file.write_text(json.dumps(asdict(request)))
        env = dict(os.environ)
        root = str(Path(app.__file__).resolve().parents[1])  # the child imports app as this process does
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        command = [sys.executable, "-m", "app.training.int8_step", str(request_file), str(result_file)]
        proc = subprocess.Popen(command, env=env)
        log(
            f"[int8] quantizing and evaluating in child process {proc.pid} (a failure there ships fp32 alone)"
        )
        peak = 0.0
        try:
            while proc.returncode is None:
                peak = max(peak, peak_rss_mib(proc.pid))  # a killed child cannot report its own
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=POLL_S)
        finally:
            if proc.returncode is None:  # we were interrupted (SIGTERM): the child must not outlive the job
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - started
        if proc.returncode == 0:
            try:
                result = Int8Result.model_validate_json(result_file.read_text())
            except Exception as exc:  # a result we cannot read is a failed step, not a failed job
                return failed(
                    request, f"unreadable int8 result ({type(exc).__name__}: {exc})", seconds=seconds
                )
            return result  # with the child's own peak RSS (_child)
        why = _why(proc.returncode, result_file)
    result = failed(request, why, seconds=seconds, peak_rss_mib=peak or None)
    log(f"[int8] NOT shipped: {result.reason} (peak RSS >= {peak:.0f} MiB, sampled every {POLL_S}s)")
    return result


def _child(request_file: Path, result_file: Path) -> int:
    from app.training.quantize import build_int8

    request = Int8Request(**json.loads(request_file.read_text()))
    try:
        result = build_int8(
            model_dir=Path(request.model_dir),
            fp32_name=request.fp32_name,
            input_name=request.input_name,
            imgsz=request.imgsz,
            data_yaml=Path(request.data_yaml),
            class_names=request.class_names,
            calibration_folder=Path(request.calibration_folder),
            calibration_limit=request.calibration_limit,
            max_drop=request.max_drop,
            max_class_drop=request.max_class_drop,
            min_val_images=request.min_val_images,
            float_head=request.float_head,
            log=lambda message: print(message, flush=True),
        )
    except Exception as exc:  # reported to the parent, which ships fp32 and records why
        error: dict[str, Any] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
        result_file.write_text(json.dumps(error))
        print(f"[int8] step failed: {error['error']}", file=sys.stderr, flush=True)
        return 1
    result = result.model_copy(update={"peak_rss_mib": peak_rss_mib()})
    result_file.write_text(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1]), Path(sys.argv[2])))
