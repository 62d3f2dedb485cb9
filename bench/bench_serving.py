"""Serving speed and INT8 accuracy, side by side in one run, on the real YOLOv8s checkpoint (fall_detection best.pt,
exported to ONNX at imgsz 640 with a dynamic input, so bus.jpg is letterboxed to 640x480 as ultralytics does):

  machine limit  fp32 and int8: N single-thread ONNX Runtime sessions in N processes (N = CPUs), session.run on the
                 letterboxed bus.jpg tensor, no HTTP, no decode: the most this machine computes;
  ours           the ``serve`` executable with its default layout (settings.default_layout) over HTTP, fp32 and
                 int8 (SERVING_PRECISION), at concurrency 1 and saturated (2 x workers x threads clients);
  spread         one client per vCPU, SPREAD_ROUNDS times on fresh connections: the cores the server keeps busy
                 (a vCPU idle while another process answers two clients in turn shows as ~1 of 2 cores);
  paired rounds  per precision, ``--rounds`` pairs of [machine limit, ours saturated] back to back: each ratio
                 compares two windows seconds apart (a shared machine's speed drifts 10-25 % within a minute), and
                 the targets use the median ratio. A step's rate counts the requests answered in its window, after
                 every client's unmeasured warm-up (scripts.lib.load.run_step);
  reference      what the public samples do: ultralytics PyTorch ``predict`` in a plain ``http.server`` handler;
  CPU seconds    per request, all processes of the server (supervisor + workers); the load generator's own CPU
                 per request (this process: the client threads, and the /ping sampler in the saturated fp32 step;
                 it shares the cores, so what it spends the server cannot) and the cores the server kept busy,
                 which together say how much of an img/s gap is overhead, generator or a busy neighbour;
  INT8 accuracy  app.training.quantize (the training job's own code: QDQ, per-channel, strided percentile calibration,
                 head output convs and decoding in float) then ultralytics' validator (app.training.evaluation) for
                 both precisions on a teacher-labelled set
                 (see ACCURACY: variants of the ultralytics photos labelled by best.pt in PyTorch at conf >= 0.5;
                 calibrated on other variants). It measures how far int8 strays from fp32, not absolute accuracy.

Targets (issue 15): saturated fp32 >= 0.9x the fp32 limit; saturated int8 >= 2.5x our saturated fp32; int8
mAP50-95 within 1.0 point of fp32; /ping p99 < 100 ms while saturated; (issue 5) saturated fp32 >= 1.8x the
reference; RSS per worker < 400 MB.

Runtime choice (issue 15, item 6): ONNX Runtime only. On this 2-vCPU box OpenVINO measured ~13.1 vs ~12.2 img/s
fp32 (+7%) and ~32.4 vs ~30.8 img/s int8 (+5%), both with 2 processes x 1 thread: below the 10% bar for carrying a
second runtime in the image.

Usage: .venv/bin/python bench/bench_serving.py [--seconds 6] [--rounds 6]   (~4 min on 2 vCPUs)
"""

from __future__ import annotations

import argparse
import ast
import importlib.resources
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

# Run as a script (python bench/bench_serving.py): this checkout's packages come first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.training.offline import go_offline
from infra.paths import REPO_ROOT

go_offline(REPO_ROOT / ".cache")  # for the export and accuracy subprocesses, which import ultralytics

import onnxruntime as ort  # noqa: E402

from app.contracts.artifact import (  # noqa: E402
    INT8_ONNX,
    ExportInfo,
    Int8Result,
    ModelCard,
    read_model_card,
    write_model_card,
)
from app.serving import images  # noqa: E402
from app.serving.settings import ServingSettings, cpu_count  # noqa: E402
from scripts.lib.load import Step, http_invoker, run_step  # noqa: E402
from tests.app.serving.server_process import free_port, serve_args, serve_env  # noqa: E402

IMGSZ = 640
MAX_DROP = 0.01  # the training gate's default: 1.0 mAP50-95 point
# Steps of one client per vCPU, each on fresh connections (the kernel picks the accepting process).
SPREAD_ROUNDS = 4
EXPORT = """
import shutil, sys
from ultralytics import YOLO
path = YOLO(sys.argv[1]).export(format="onnx", imgsz=int(sys.argv[3]), nms=False, opset=17, simplify=True,
                                dynamic=sys.argv[4] == "dynamic", half=False, verbose=False)
shutil.move(path, sys.argv[2])
"""
# What the public YOLO-on-SageMaker samples do: a PyTorch model and predict() inside a simple HTTP handler.
REFERENCE = """
import json, sys
import cv2, numpy as np
from http.server import BaseHTTPRequestHandler, HTTPServer
from ultralytics import YOLO

model = YOLO(sys.argv[1])
model.predict(np.zeros((480, 640, 3), np.uint8), imgsz=int(sys.argv[3]), verbose=False)

class Handler(BaseHTTPRequestHandler):  # HTTP/1.0, one request at a time
    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200, {"status": "ok"})

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        r = model.predict(img, imgsz=int(sys.argv[3]), verbose=False)[0]
        dets = [{"label": r.names[int(c)], "class_id": int(c), "confidence": float(s),
                 "box": dict(zip(("x1", "y1", "x2", "y2"), b))}
                for b, s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist())]
        self._send(200, {"predictions": [{"image": {"width": img.shape[1], "height": img.shape[0]},
                                          "detections": dets}]})

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
"""


# Teacher-labelled set + quantization + validation, in a subprocess (this process never imports torch).
ACCURACY = """
import json, sys, time
from pathlib import Path
import cv2, numpy as np
from ultralytics import YOLO
from app.training.evaluation import evaluate
from app.training.quantize import quantize

pt, fp32, int8, work, assets = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5:]
photos = {Path(a).stem: cv2.imread(a) for a in assets}
def crop(img, f, dx, dy):
    h, w = img.shape[:2]; ch, cw = int(h * f), int(w * f); y, x = int((h - ch) * dy), int((w - cw) * dx)
    return img[y:y + ch, x:x + cw]
val = {"orig": lambda i: i, "hflip": lambda i: cv2.flip(i, 1), "rot90": lambda i: cv2.rotate(i, cv2.ROTATE_90_CLOCKWISE),
       "rot270": lambda i: cv2.rotate(i, cv2.ROTATE_90_COUNTERCLOCKWISE), "crop": lambda i: crop(i, 0.75, 0.5, 0.5),
       "small": lambda i: cv2.resize(i, None, fx=0.5, fy=0.5), "dark": lambda i: (i * 0.6).astype(np.uint8),
       "crop_tr": lambda i: crop(i, 0.8, 1, 0), "crop_bl": lambda i: crop(i, 0.8, 0, 1),
       "blur": lambda i: cv2.GaussianBlur(i, (5, 5), 0), "gray": lambda i: cv2.cvtColor(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR),
       "vflip_rot90": lambda i: cv2.rotate(cv2.flip(i, 1), cv2.ROTATE_90_CLOCKWISE), "big": lambda i: cv2.resize(i, None, fx=1.5, fy=1.5)}
calib = {"rot180": lambda i: cv2.rotate(i, cv2.ROTATE_180), "crop_tl": lambda i: crop(i, 0.7, 0, 0),
         "crop_br": lambda i: crop(i, 0.7, 1, 1), "bright": lambda i: cv2.convertScaleAbs(i, alpha=1.2, beta=20)}
teacher = YOLO(str(pt))
(work / "images" / "val").mkdir(parents=True); (work / "labels" / "val").mkdir(parents=True); (work / "calib").mkdir()
boxes = 0
for stem, img in photos.items():
    for name, f in val.items():
        path = work / "images" / "val" / f"{stem}_{name}.jpg"
        cv2.imwrite(str(path), np.ascontiguousarray(f(img)))
        r = teacher.predict(str(path), imgsz=640, conf=0.5, verbose=False)[0]  # the file the validator reads
        lines = [f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for (x, y, w, h), c in zip(r.boxes.xywhn.tolist(), r.boxes.cls.tolist())]
        boxes += len(lines)
        (work / "labels" / "val" / f"{stem}_{name}.txt").write_text("\\n".join(lines))
    for name, f in calib.items():
        cv2.imwrite(str(work / "calib" / f"{stem}_{name}.jpg"), np.ascontiguousarray(f(img)))
yaml = work / "data.yaml"
yaml.write_text(f"path: {work}\\ntrain: images/val\\nval: images/val\\nnames: {teacher.names}\\n")
t0 = time.monotonic()
calibration = sorted((work / "calib").iterdir())
done = quantize(fp32, int8, images=calibration, imgsz=640, input_name="images")
quant_s = time.monotonic() - t0
names = [teacher.names[i] for i in sorted(teacher.names)]
keys = ("precision", "recall", "mAP50", "mAP50-95")
m32, m8 = (evaluate(m, data_yaml=yaml, imgsz=640, workdir=work, class_names=names).report for m in (fp32, int8))
print("RESULT " + json.dumps({"fp32": {k: m32[k] for k in keys}, "int8": {k: m8[k] for k in keys},
      "images": len(photos) * len(val), "boxes": boxes, "calibration": len(calibration),
      "float_nodes": done.float_nodes, "quantize_s": round(quant_s, 1)}))
"""
# One single-thread session, loaded once; each line on stdin ("<start> <seconds>") is a window: run back to back
# from the shared start time, print "<runs/s> <CPU s per run>". N of these are the machine's limit. The rate counts
# the runs finished inside the window, as the server's steps count the answers inside theirs (run_step): the run
# in progress at the end of the window is not counted, as a request in flight is not.
LIMIT = """
import sys, time
import numpy as np, onnxruntime as ort
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
s = ort.InferenceSession(sys.argv[1], o, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2]); feed = {s.get_inputs()[0].name: x}
s.run(None, feed)
print("ready", flush=True)
for line in sys.stdin:
    start, seconds = map(float, line.split())
    while time.time() < start:
        time.sleep(0.002)
    n, cpu0, end = 0, time.process_time(), start + seconds
    cpu = cpu0
    while time.time() < end:
        s.run(None, feed)
        if time.time() <= end:
            n, cpu = n + 1, time.process_time()
    print(n / seconds, (cpu - cpu0) / max(n, 1), flush=True)
"""


def build_artifact(work: Path, pt: Path, mode: str) -> Path:
    """best.pt -> model.onnx at 640 (exported in a subprocess: this process never imports torch) + model.json.

    ``dynamic``: the graph takes any height/width, so serving letterboxes to the smallest multiple of the stride,
    exactly as ultralytics' PyTorch predict (the reference) does; ``static``: the fixed 640x640 input."""
    model_dir = work / f"model-{mode}"
    model_dir.mkdir()
    subprocess.run(
        [sys.executable, "-c", EXPORT, str(pt), str(model_dir / "model.onnx"), str(IMGSZ), mode],
        env=serve_env(),
        check=True,
        capture_output=True,
    )
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = ast.literal_eval(meta["names"])
    anchors = sum((IMGSZ // s) ** 2 for s in (8, 16, 32))
    write_model_card(
        model_dir,
        ModelCard(
            name="fall-detector",
            version=f"bench-{mode}",
            class_names=[names[i] for i in sorted(names)],
            imgsz=IMGSZ,
            ultralytics_version=meta.get("version", "?"),
            dataset_version="pretrained",
            export=ExportInfo(
                opset=17,
                input_shape=[1, 3, IMGSZ, IMGSZ],
                output_shape=[1, 4 + len(names), anchors],
                dynamic=mode == "dynamic",
            ),
        ),
    )
    return model_dir


def wait_ready(proc: subprocess.Popen[bytes], url: str, started: float, timeout: float = 120) -> float:
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url}: no 200 on /ping within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class MachineLimit:
    """N = CPUs single-thread sessions in their own processes, loaded once and idle between windows."""

    def __init__(self, model: Path, tensor: Path) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", LIMIT, str(model), str(tensor)],
                env=serve_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(cpu_count())
        ]
        for proc in self.procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", (
                "limit session failed"
            )

    def measure(self, seconds: float) -> tuple[float, float]:
        """Images per second of all sessions over one shared window, and the CPU seconds per image they spent."""
        start = time.time() + 0.2  # every process has read its line by then
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start} {seconds}\n")
            proc.stdin.flush()
        results = [[float(v) for v in proc.stdout.readline().split()] for proc in self.procs if proc.stdout]
        return sum(rate for rate, _ in results), float(np.mean([cpu for _, cpu in results]))

    def close(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(30)


def accuracy(pt: Path, model_dir: Path, work: Path) -> dict:
    """Quantize model.onnx into model.int8.onnx and validate both on the teacher-labelled set (subprocess)."""
    spec = importlib.util.find_spec("ultralytics")
    assert spec and spec.origin
    assets = [str(Path(spec.origin).parent / "assets" / n) for n in ("bus.jpg", "zidane.jpg")]
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            ACCURACY,
            str(pt),
            str(model_dir / "model.onnx"),
            str(model_dir / INT8_ONNX),
            str(work / "labelled"),
            *assets,
        ],
        env=serve_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    drop = result["fp32"]["mAP50-95"] - result["int8"]["mAP50-95"]
    card = read_model_card(model_dir)
    # Speed is measured whatever the gate says (the gate row reports it); the card lets serving load int8.
    card = card.model_copy(
        update={
            "int8": Int8Result(
                file=INT8_ONNX,
                shipped=True,
                status="shipped",
                reason=f"bench: mAP50-95 drop {drop:.4f} (gate {MAX_DROP})",
                max_map50_95_drop=MAX_DROP,
                map50_95_drop=round(drop, 6),
                fp32_onnx_metrics=result["fp32"],
                int8_onnx_metrics=result["int8"],
                calibration_images=result["calibration"],
                calibration_method="percentile 99.99, strided",
                float_nodes=result["float_nodes"],
                seconds=result["quantize_s"],
            )
        }
    )
    write_model_card(model_dir, card)
    return result


def start(cmd: list[str], url: str, **extra: str) -> tuple[subprocess.Popen[bytes], float]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=serve_env(**extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, wait_ready(proc, url, started)


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a server and all its processes (uvicorn's supervisor + workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def worker_rss_mb(pid: int) -> float:
    procs = psutil.Process(pid).children(recursive=True) or [psutil.Process(pid)]
    return max(p.memory_info().rss for p in procs) / 2**20


def ping_while(url: str, busy: threading.Event, out: list[float]) -> None:
    """/ping every 50 ms on one keep-alive connection (http.client: ~0.3 ms of this process's CPU a ping, where an
    httpx client every 20 ms took ~0.1 of the two cores from the server it was timing)."""
    from http.client import HTTPConnection
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    while not busy.is_set():
        time.sleep(0.005)
    while busy.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/ping")
        conn.getresponse().read()
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.05)
    conn.close()


# name, img/s, p50, p99, server CPU s/request, load generator CPU s/request, cores busy, errors
Row = tuple[str, float, float, float, float, float, float, str]


def measure(
    name: str,
    url: str,
    pid: int,
    photo: bytes,
    concurrency: int,
    seconds: float,
    pings: list[float] | None = None,
) -> Row:
    """A closed-loop step (scripts.lib.load.run_step) of ``seconds``; CPU seconds over the step's requests, the
    server's and this process's (the load generator, on the same cores), and the server's CPU over the step's wall
    time (cores busy: N when it had every core)."""
    busy = threading.Event()
    pinger = None
    if pings is not None:
        pinger = threading.Thread(target=ping_while, args=(url, busy, pings))
        pinger.start()
    cpu0, gen0, wall0 = cpu_seconds(pid), time.process_time(), time.monotonic()
    busy.set()
    step: Step = run_step(http_invoker(url, photo, "image/jpeg", 60), concurrency, 100_000, seconds)
    busy.clear()
    cpu, gen, wall = cpu_seconds(pid) - cpu0, time.process_time() - gen0, time.monotonic() - wall0
    if pinger is not None:
        pinger.join()
    # each client also sends one unmeasured warm-up request
    n = step.requests + concurrency
    return (name, step.rps, step.p50_ms, step.p99_ms, cpu / n, gen / n, cpu / wall, str(step.errors))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def median(rounds: list[tuple[float, float]], index: int) -> float:
    return float(np.median([r[index] for r in rounds]))


def pooled(precision: str, rows: list[Row]) -> float:
    """All of ours saturated over all of the limit: every round's images over the same total time."""
    mine = sum(r[1] for r in rows if f"ours {precision} saturated" in r[0])
    return mine / sum(r[1] for r in rows if r[0].endswith(f"machine limit {precision}"))


def limit_median(precision: str, rows: list[Row], *, cpu: bool = False) -> float:
    """The median machine limit of ``precision`` over the rounds (img/s, or CPU s per image with ``cpu``)."""
    return float(np.median([r[4 if cpu else 1] for r in rows if r[0].endswith(f"machine limit {precision}")]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6, help="length of each measured step")
    parser.add_argument(
        "--rounds", type=int, default=6, help="pairs of [machine limit, ours saturated] per precision"
    )
    args = parser.parse_args()
    spec = importlib.util.find_spec("ultralytics")
    assert spec and spec.origin
    photo = (Path(spec.origin).parent / "assets" / "bus.jpg").read_bytes()
    settings = ServingSettings()
    saturated = 2 * settings.workers * settings.threads
    load_start = os.getloadavg()[0]
    print(
        f"bench_serving {time.strftime('%Y-%m-%d %H:%M')}: {cpu_count()} CPUs, fall_detection best.pt (YOLOv8s) at "
        f"imgsz {IMGSZ}, bus.jpg (810x1080 -> 640x480); our server's default layout: {settings.workers} worker(s) x "
        f"{settings.threads} inference threads x {settings.ort_threads} ONNX Runtime thread(s), "
        f"{settings.run_slots} run(s) at once per worker, spinning {'on' if settings.spinning else 'off'}; "
        f"onnxruntime {ort.__version__}",
        flush=True,
    )
    rows: list[Row] = []
    pings: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        work = Path(tmp)
        pt = work / "best.pt"  # a copy: export writes next to the checkpoint
        shutil.copyfile(str(importlib.resources.files("fall_detection") / "models" / "best.pt"), pt)
        t0 = time.monotonic()
        model_dir = build_artifact(work, pt, "dynamic")
        acc = accuracy(pt, model_dir, work)
        print(f"export + quantize + validate: {time.monotonic() - t0:.0f} s", flush=True)
        tensor = work / "bus.npy"
        np.save(tensor, images.load(photo, imgsz=IMGSZ, max_pixels=50_000_000, stride=32).tensor)
        # Each precision: its server and the limit's sessions up (idle between windows: no spinning, nothing to
        # do), then ``rounds`` pairs of [machine limit, ours saturated], alternating which goes first, so every
        # ratio compares two windows seconds apart and a steady drift cancels. On a shared 2-core box the machine's
        # speed drifts by 10-25 % within a minute; steps minutes apart measured that, not the server.
        paired: dict[str, list[tuple[float, float]]] = {}  # precision -> per round (img/s ratio, CPU s ratio)
        ours: dict[str, float] = {}
        ours_cpu: dict[str, float] = {}
        ours_gen: dict[str, float] = {}
        start_s = rss_mb = 0.0
        spread: list[float] = []  # cores busy with one client per vCPU, per round of fresh connections
        nan = float("nan")
        for precision, file in (("fp32", "model.onnx"), ("int8", INT8_ONNX)):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            serve = [sys.executable, *serve_args(model_dir, port)]
            limit_sessions = MachineLimit(model_dir / file, tensor)
            proc, ready_s = start(serve, url, SERVING_PRECISION=precision)
            try:
                time.sleep(3)  # every worker warm (/ping answers once the first one is)
                rows.append(measure(f"ours {precision} c=1", url, proc.pid, photo, 1, args.seconds / 2))
                # fp32: one client per vCPU, fresh connections each time: is every vCPU used?
                for n in range(1, (SPREAD_ROUNDS if precision == "fp32" else 0) + 1):
                    row = measure(f"  ours fp32 c={cpu_count()} ({n})", url, proc.pid, photo, cpu_count(), 3)
                    rows.append(row)
                    spread.append(row[6])
                for n in range(1, args.rounds + 1):
                    pair: dict[str, Row] = {}
                    for which in ("limit", "ours") if n % 2 else ("ours", "limit"):
                        if which == "limit":
                            limit, limit_cpu = limit_sessions.measure(args.seconds)
                            name = f"  round {n}: machine limit {precision}"
                            pair[which] = (name, limit, nan, nan, limit_cpu, nan, nan, "-")
                        else:
                            pair[which] = measure(
                                f"  round {n}: ours {precision} saturated c={saturated}",
                                url,
                                proc.pid,
                                photo,
                                saturated,
                                args.seconds,
                                pings if precision == "fp32" else None,
                            )
                        rows.append(pair[which])
                    mine, limit_row = pair["ours"], pair["limit"]
                    paired.setdefault(precision, []).append((mine[1] / limit_row[1], limit_row[4] / mine[4]))
                    ours_gen[precision] = max(ours_gen.get(precision, 0.0), mine[5])
                saturated_rows = [
                    r for r in rows if r[0].endswith(f"ours {precision} saturated c={saturated}")
                ]
                ours[precision] = float(np.median([r[1] for r in saturated_rows]))
                ours_cpu[precision] = float(np.median([r[4] for r in saturated_rows]))
                if precision == "fp32":
                    start_s, rss_mb = ready_s, worker_rss_mb(proc.pid)
            finally:
                stop(proc)
                limit_sessions.close()
        port = free_port()
        ref_url = f"http://127.0.0.1:{port}"
        ref, _ = start([sys.executable, "-c", REFERENCE, str(pt), str(port), str(IMGSZ)], ref_url)
        try:
            ref_row = measure("ultralytics PyTorch reference c=1", ref_url, ref.pid, photo, 1, args.seconds)
            rows.append(ref_row)
        finally:
            stop(ref)

    print(
        f"\n{'':44} {'img/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'CPU s/req':>10} {'gen CPU s':>10} "
        f"{'cores busy':>10} {'errors':>7}"
    )
    for name, rps, p50, p99, cpu, gen, busy, errors in rows:
        cells = " ".join("       -" if np.isnan(v) else f"{v:8.1f}" for v in (p50, p99))
        cpu_cells = " ".join(
            "         -" if np.isnan(v) else f"{v:10.{digits}f}"
            for v, digits in ((cpu, 3), (gen, 4), (busy, 2))
        )
        print(f"{name:44} {rps:7.2f} {cells} {cpu_cells} {errors:>7}")
    fp32_map, int8_map = acc["fp32"]["mAP50-95"], acc["int8"]["mAP50-95"]
    drop_points = (fp32_map - int8_map) * 100
    print(
        f"\nINT8 accuracy (ultralytics' validator): mAP50-95 fp32 {fp32_map:.4f}, int8 {int8_map:.4f} "
        f"(drop {drop_points:+.2f} points); mAP50 fp32 {acc['fp32']['mAP50']:.4f}, int8 {acc['int8']['mAP50']:.4f}. "
        f"Labelled set: {acc['images']} variants (flips, 90-degree rotations, crop, half size, dark) of the ultralytics "
        f"photos bus.jpg and zidane.jpg, {acc['boxes']} boxes labelled by best.pt in PyTorch at conf >= 0.5 (a teacher "
        f"set: int8 vs fp32 agreement, not absolute accuracy); calibrated on {acc['calibration']} other variants; "
        f"{acc['float_nodes']} head nodes in float; quantization {acc['quantize_s']:.0f} s"
    )
    print(
        f"start to first 200 on /ping (fp32): {start_s:.2f} s; RSS per worker: {rss_mb:.0f} MB; /ping sampled {len(pings)} times while saturated"
    )
    print(
        f"load average (1 min) at the start {load_start:.2f}, at the end {os.getloadavg()[0]:.2f}: above 0 means "
        "other work competed for these CPUs during the run (img/s ratios suffer; CPU-second ratios do not)"
    )
    fp32_rounds, int8_rounds = paired["fp32"], paired["int8"]
    print(
        "paired rounds, ours saturated / the machine limit of the same round (img/s; CPU s): "
        + "; ".join(
            f"{precision} "
            + ", ".join(f"{a:.2f} ({c:.2f})" for a, c in rounds)
            + f" (pooled {pooled(precision, rows):.2f})"
            for precision, rounds in (("fp32", fp32_rounds), ("int8", int8_rounds))
        )
        + f"; the int8 limit is {limit_median('int8', rows) / limit_median('fp32', rows):.2f}x the fp32 limit on "
        "this CPU (the ceiling of the int8 / fp32 ratio)"
    )
    checks = [
        ("saturated fp32 / fp32 machine limit (median)", median(fp32_rounds, 0), ">=", 0.9),
        ("saturated int8 / saturated fp32", ours["int8"] / ours["fp32"], ">=", 2.5),
        ("saturated int8 / int8 machine limit (median)", median(int8_rounds, 0), ">=", 0.9),
        # the same ratios from CPU seconds, which a busy neighbour on a shared machine moves less
        ("  by CPU s: fp32 limit / ours saturated fp32", median(fp32_rounds, 1), ">=", 0.9),
        ("  by CPU s: ours fp32 / ours int8 (saturated)", ours_cpu["fp32"] / ours_cpu["int8"], ">=", 2.5),
        # what img/s can reach with the load generator on the same cores (the rest of a gap: a busy neighbour)
        (
            "  by CPU s with the generator's: fp32",
            limit_median("fp32", rows, cpu=True) / (ours_cpu["fp32"] + ours_gen["fp32"]),
            ">=",
            0.9,
        ),
        ("int8 mAP50-95 drop, points", drop_points, "<=", MAX_DROP * 100),
        # a process that accepted two clients' connections must not answer them in turn while a vCPU idles
        ("cores busy, one client per vCPU (worst round)", min(spread), ">=", 0.75 * cpu_count()),
        ("/ping p99 ms while saturated", pct(pings, 99) if pings else float("nan"), "<", 100),
        ("saturated fp32 / reference (issue 5)", ours["fp32"] / ref_row[1], ">=", 1.8),
        ("RSS per worker, MB", rss_mb, "<", 400),
    ]
    print(f"\n{'target':44} {'measured':>9}   {'target':<8} met")
    for name, value, op, target in checks:
        met = value <= target if op == "<=" else value >= target if op == ">=" else value < target
        print(f"{name:44} {value:9.2f}   {op}{target:<6g} {'OK' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
