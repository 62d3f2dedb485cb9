"""Write the model artifact to ``<opt_ml>/model`` exactly as app.contracts.artifact defines it.

model.onnx is exported in the *raw* layout (no NMS inside the graph) on purpose: serving keeps conf, iou and max_det
as per-request options, which an NMS-embedded graph would freeze at export time; NMS on <= a few thousand candidate
boxes is cheap in numpy next to the network itself.

A model that cannot be served is never shipped: model.onnx is loaded with ONNX Runtime (what serving runs) and one
validation image goes through it before model.json - whose presence means the artifact is complete - is written.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from app.contracts.artifact import (
    LOSS_PNG,
    MODEL_ONNX,
    MODEL_PT,
    RESULTS_CSV,
    ArtifactError,
    ExportInfo,
    Int8Result,
    ModelCard,
    write_model_card,
)
from app.contracts.dataset import TRAIN, DatasetInfo
from app.contracts.hyperparameters import Hyperparameters
from app.contracts.metrics import MODEL_METRICS, TRAIN_LOSSES, VAL_LOSSES, from_ultralytics
from app.training.comparison import compare_step


def export_onnx(weights: Path, model_dir: Path, *, imgsz: int, opset: int) -> ExportInfo:
    """Export ``weights`` to model_dir/model.onnx (fp32, simplified) with dynamic height/width, so serving letterboxes
    each image to the smallest multiple of the stride instead of a full square (about 30% less compute on 4:3
    photos). model.json records the nominal imgsz x imgsz shapes; ``dynamic`` says height/width may vary."""
    import onnx
    from ultralytics import YOLO

    model = YOLO(str(weights))
    strides = [int(s) for s in model.model.stride.tolist()]  # type: ignore[union-attr]
    exported = model.export(
        format="onnx",
        imgsz=imgsz,
        opset=opset,
        simplify=True,
        dynamic=True,
        half=False,
        nms=False,
        device="cpu",
    )
    target = model_dir / MODEL_ONNX
    shutil.move(str(exported), target)
    graph = onnx.load(str(target), load_external_data=False).graph
    rows = graph.output[0].type.tensor_type.shape.dim[1].dim_value  # 4 box coordinates + one score per class
    anchors = sum((imgsz // s) ** 2 for s in strides)  # one prediction per grid cell of each detection stride
    return ExportInfo(
        opset=opset,
        input_name=graph.input[0].name,
        input_shape=[1, 3, imgsz, imgsz],
        output_name=graph.output[0].name,
        output_shape=[1, int(rows), anchors],
        dynamic=True,
        simplified=True,
        stride=max(strides),
    )


def check_onnx(path: Path, export: ExportInfo, *, classes: int, sample: Path) -> dict[str, object]:
    """Run ``sample`` through ``path`` with ONNX Runtime, letterboxed as ultralytics (and serving) does; raise
    ArtifactError saying what failed, so the job fails with a clear reason instead of shipping a graph that serving
    would refuse or answer 500s with."""
    import cv2
    import numpy as np
    import onnxruntime as ort
    from ultralytics.data.augment import LetterBox

    image = cv2.imread(str(sample))
    if image is None:
        raise ArtifactError(f"{sample}: OpenCV cannot read this validation image to test-run {path.name}")
    imgsz = export.input_shape[2]
    # the model's largest stride: a P6 (stride 64) graph refuses a canvas that is a multiple of 32 only
    boxed = np.asarray(
        LetterBox(imgsz, auto=export.dynamic, stride=export.stride)(image=image)
    )  # image: an array
    tensor = np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (output,) = session.run([export.output_name], {export.input_name: tensor})
    except Exception as exc:  # ORT's own error types: any of them means serving could not run it either
        raise ArtifactError(
            f"{path}: ONNX Runtime {ort.__version__} cannot run it on validation image {sample.name} "
            f"({type(exc).__name__}: {str(exc)[:300]}); the model would not serve, so it is not shipped"
        ) from None
    rows = 4 + classes
    if output.ndim != 3 or output.shape[:2] != (1, rows):
        raise ArtifactError(
            f"{path}: output '{export.output_name}' has shape {list(output.shape)} on {sample.name}; serving "
            f"expects [1, 4 + {classes} classes = {rows}, anchors] (the raw layout); the model is not shipped"
        )
    if not np.isfinite(output).all():
        raise ArtifactError(
            f"{path}: output has NaN/inf values on {sample.name}; the weights are broken, the model is not shipped"
        )
    return {"image": sample.name, "input_shape": list(tensor.shape), "output_shape": list(output.shape),
            "onnxruntime": ort.__version__}  # fmt: skip


def plot_losses(results: pd.DataFrame, path: Path) -> Path:
    """Train vs val loss per epoch: the total on the left, each part on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = results.rename(columns=str.strip)
    epochs = results["epoch"]
    fig, (total, parts) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for split, losses, style in (("train", TRAIN_LOSSES, "-"), ("val", VAL_LOSSES, "--")):
        columns = [m.column for m in losses if m.column in results]
        total.plot(epochs, results[columns].sum(axis=1), style, marker="o", label=f"{split} loss")
        for column in columns:
            parts.plot(epochs, results[column], style, marker=".", label=column)
    total.set(title="Total loss (box + cls + dfl)", xlabel="epoch", ylabel="loss")
    parts.set(title="Loss parts", xlabel="epoch")
    total.legend()
    parts.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def model_version(job_name: str | None) -> str:
    """The SageMaker job name when there is one (unique per job), else a UTC timestamp."""
    return job_name or "local-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_artifact(
    *,
    model_dir: Path,
    weights: Path,
    results: pd.DataFrame,
    metrics: dict[str, Any],
    dataset: DatasetInfo,
    hyperparameters: Hyperparameters,
    training: dict[str, object],
    sample_image: Path,
    data_yaml: Path,
    job_name: str | None,
    champion: Path | None = None,
) -> ModelCard:
    """model.pt, model.onnx (test-run on ``sample_image``), model.int8.onnx (when it passes its gate), results.csv,
    loss.png, then model.json last (its presence means the rest is there). ``data_yaml`` is the training data yaml:
    int8 calibration images come from its train split, and both precisions are validated on its val split.
    ``job_name`` (the SageMaker job's) is the model version; local runs get a timestamp. ``champion`` (the channel
    folder, if any) is compared with model.onnx (app.training.comparison; a failure there ships the model)."""
    import ultralytics

    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, model_dir / MODEL_PT)
    export = export_onnx(weights, model_dir, imgsz=hyperparameters.imgsz, opset=hyperparameters.onnx_opset)
    training = {
        **training,
        "onnx_check": check_onnx(
            model_dir / MODEL_ONNX, export, classes=len(dataset.class_names), sample=sample_image
        ),
    }
    int8 = (
        _int8(model_dir, export, hyperparameters, data_yaml, dataset.class_names)
        if hyperparameters.int8
        else None
    )
    comparison = compare_step(
        model_dir=model_dir,
        candidate_names=dataset.class_names,
        imgsz=hyperparameters.imgsz,
        data_yaml=data_yaml,
        channel=champion,
        hp=hyperparameters,
        workdir=data_yaml.parent,
    )
    results.rename(columns=str.strip).to_csv(model_dir / RESULTS_CSV, index=False)
    plot_losses(results, model_dir / LOSS_PNG)
    card = ModelCard(
        name=hyperparameters.name,
        version=model_version(job_name),
        class_names=dataset.class_names,
        imgsz=hyperparameters.imgsz,
        ultralytics_version=ultralytics.__version__,
        dataset_version=dataset.version,
        metrics=from_ultralytics(metrics, metrics=MODEL_METRICS, source=f"final metrics of {weights.name}"),
        export=export,
        training=training,
        int8=int8,
        comparison=comparison,
    )
    write_model_card(model_dir, card)
    return card


def _int8(
    model_dir: Path, export: ExportInfo, hp: Hyperparameters, data_yaml: Path, class_names: list[str]
) -> Int8Result:
    """The int8 step in a child process (app.training.int8_step): whatever happens there, fp32 ships."""
    from app.training.int8_step import Int8Request, run_int8

    data = yaml.safe_load(data_yaml.read_text())
    request = Int8Request(
        model_dir=str(model_dir),
        fp32_name=MODEL_ONNX,
        input_name=export.input_name,
        imgsz=hp.imgsz,
        data_yaml=str(data_yaml),
        class_names=class_names,
        calibration_folder=str(Path(data["path"]) / data[TRAIN]),
        calibration_limit=hp.int8_calibration_images,
        max_drop=hp.int8_max_map_drop,
        max_class_drop=hp.int8_max_class_drop,
        min_val_images=hp.int8_min_val_images,
    )
    return run_int8(request)
