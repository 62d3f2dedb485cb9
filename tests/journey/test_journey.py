"""The README's first-account journey, end to end, each step as the role that performs it in the account.

Order (README "The cloud data path, end to end", "Releasing", "Rolling back", "Teardown"): first deploy of Dev (no
release) -> labels land -> ``scripts.dataprep_job`` -> the Processing job as the dataprep role -> dataset -> dataset
event -> runner Lambda (runner role) -> training job -> the training container as the training role ->
``model.tar.gz`` -> registrar Lambda (registrar role) -> model package -> ``release approve`` -> ``release create``
-> preflight -> Staging and Prod read the release's image and model across accounts, each endpoint's instance is the
real serve app on that model.tar.gz (tests/journey/hosting.py) -> ``release verify`` (verify_endpoint's checks, as the
stage's ReleaseVerifierRole assumed from the pipeline account) -> second release, alarm rollback, ``release rollback``
-> Dev's teardown -> the permissions report (build/journey-permissions.json: every grant of every role run, used or
not).

Each named defect has a test that puts it back and shows the journey fails naming step, role, action and resource:
the runner's PassRole, labels outside raw/ (label_sources grant), missing serve-gpu, the rollback read, Dev's
teardown (retention).

The steps share one world (tests/journey/world.py) and run in file order; a step that fails today because of a
defect another issue fixes is marked ``xfail(strict=True)`` with that issue: it turns into a failure as soon as the
fix lands, and the marker must go. Side branches (the defective path) never change the state the main path uses.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from app.contracts.dataset import DATASET_JSON
from app.dataprep.synthetic import generate_ground_truth
from app.launcher import aws as launcher_aws
from infra.release_record import Release
from tests.app.launcher.events import s3_event, state_change
from tests.fixtures.artifacts import FAST_HYPERPARAMETERS, make_opt_ml, pretrained_checkpoint, run_training
from tests.journey.conftest import LABELING_BUCKET
from tests.journey.environment import environment
from tests.journey.loader import ServingModel
from tests.journey.policy import PermissionDenied
from tests.journey.steps import (
    download_prefix,
    publish_assets,
    pull_image,
    record_final_metrics,
    run_processing_job,
    upload,
)
from tests.journey.world import World, model_tar, s3_uri_parts

pytestmark = pytest.mark.slow  # trains a model and runs a server (pyproject markers)

N_IMAGES = 48


@pytest.fixture(autouse=True)
def _own_denials(world: World) -> None:
    """Each step is judged on its own calls: denials left by a step that failed early are not carried over.
    Lambda Invoke (scripts.training start) runs the function's handler as Lambda would: in-process, as its role."""
    world.check.denials.clear()
    world.check.invoker = lambda name, payload: _invoke_response(
        _run_function(world, name, f"Lambda {name} (Invoke)", payload)
    )


def _invoke_response(answer: object) -> dict:
    import io

    from botocore.response import StreamingBody

    body = json.dumps(answer).encode()
    return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}


def _handler(world: World, stack: str, function_prefix: str, step: str, event: dict[str, object]) -> dict:
    """Invoke a Lambda handler of ``stack`` in-process, as its execution role and with its deployed environment."""
    [name] = [n for n in world.cloud.functions if n.startswith(f"{stack}-{function_prefix}")]
    return _run_function(world, name, step, event)


def _run_function(world: World, name: str, step: str, event: object) -> dict:
    import importlib

    env = dict(world.cloud.functions[name])
    role = world.cloud.roles[env.pop("__role__")]
    module, _, function = env.pop("__handler__").rpartition(".")
    launcher_aws._cold_start.cache_clear()  # a fresh Lambda container per invocation
    try:
        with environment(env), world.check.as_role(step, role):
            return getattr(importlib.import_module(module), function)(event, None)
    finally:
        launcher_aws._cold_start.cache_clear()


# ------------------------------------------------------------------------------------------------ 1. first deploy
def test_first_deploy_of_dev_without_a_release(world: World) -> None:
    """README "Your labels to Prod" step 2: `npx cdk deploy 'Dev/*'` on a clone with no release yet: Data +
    Training, images built from containers/ (published to the bootstrap's asset repository), and no endpoint."""
    app = world.synth(None)
    world.state["images"] = publish_assets(world, app.outdir, world.account("Dev"))
    world.deploy(app, "Dev")
    assert "no endpoint" in world.output("Dev", "Serving", "EndpointStatus")
    assert len(world.state["images"]) >= 3, world.state["images"]


# ------------------------------------------------------------------------------------------------ 2. labels -> dataset
def _labels(world: World, name: str, *, bucket: str, prefix: str) -> Path:
    """A labelling job's output: images and an output.manifest whose source-refs point at s3://bucket/prefix/."""
    generated = generate_ground_truth(
        world.workdir / name, n_images=N_IMAGES, seed=3, imgsz=160, bucket=bucket, prefix=prefix
    )
    for image in sorted((generated.image_root / prefix).iterdir()):
        upload(image, f"s3://{bucket}/{prefix}/{image.name}")
    return generated.manifest_path


def _dataprep_job(world: World, manifest_uri: str, out_uri: str) -> tuple[int, dict | None]:
    """`python -m scripts.dataprep_job` as the operator; (exit status, the Processing job it created or None)."""
    from scripts.dataprep_job import main

    before = set(_processing_jobs(world))
    code = main(
        ["--stage", "Dev", "--labels", manifest_uri, "--out", out_uri, "--", "--val-fraction", "0.25"]
    )
    created = [j for j in _processing_jobs(world) if j not in before]
    if not created:
        return code, None
    sagemaker = world.cloud.admin(world.account("Dev")).client("sagemaker")
    return code, sagemaker.describe_processing_job(ProcessingJobName=created[0])


def _processing_jobs(world: World) -> list[str]:
    sagemaker = world.cloud.admin(world.account("Dev")).client("sagemaker")
    return [j["ProcessingJobName"] for j in sagemaker.list_processing_jobs()["ProcessingJobSummaries"]]


def _as_operator(world: World, stage: str = "Dev", *, account: str | None = None):
    """The operator's own credentials in the stage's account (an administrator: README's deploying identity), or in
    ``account`` (the pipeline's)."""

    @contextlib.contextmanager
    def scope():
        creds = world.cloud.admin(account or world.account(stage)).get_credentials()
        values = {
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_SESSION_TOKEN": creds.token,
        }
        with environment(values):
            yield

    return scope()


def test_ground_truth_labels_as_a_labeling_job_writes_them(world: World) -> None:
    """README step 3 with labels outside raw/: a Ground Truth job's output.manifest whose source-refs name its own
    bucket, listed in Dev's label_sources (tests/journey/conftest.py); the Processing job reads them as the dataprep
    role."""
    datasets = world.output("Dev", "Data", "DatasetsBucketName")
    admin = world.cloud.admin(world.account("Dev"))
    labeling = LABELING_BUCKET
    admin.client("s3").create_bucket(
        Bucket=labeling, CreateBucketConfiguration={"LocationConstraint": world.cloud.region}
    )
    world.cloud.bucket_accounts[labeling] = world.account("Dev")
    with _as_operator(world):
        manifest = _labels(world, "gt-labeling-bucket", bucket=labeling, prefix="tools-job-0/images")
        manifest_uri = f"s3://{datasets}/raw/tools-job-0/output.manifest"
        upload(manifest, manifest_uri)
        code, job = _dataprep_job(world, manifest_uri, f"s3://{datasets}/datasets/tools-job-0/")
    assert code == 0 and job is not None, f"dataprep_job exited {code}"
    world.state["labeling_job"] = job
    status = run_processing_job(world, job, world.workdir / "processing-gt-0")
    world.check.verdict()
    assert status == 0, f"the Processing job exited {status}"


def test_labels_outside_raw_bite_without_the_label_sources_grant(world: World) -> None:
    """The labelling-output defect, put back: the dataprep role without the statement label_sources adds (as before
    infra/constructs/dataprep_job.py granted it) fails the Processing job's reads of the labelling bucket, naming the
    step, the role, the action and the object."""
    job = world.state["labeling_job"]
    role = world.cloud.roles[job["RoleArn"]]
    saved = copy.deepcopy(role.inline)
    for document in role.inline.values():
        document["Statement"] = [
            s
            for s in document["Statement"]
            if f"arn:aws:s3:::{LABELING_BUCKET}" not in json.dumps(s["Resource"])
        ]
    try:
        run_processing_job(world, job, world.workdir / "processing-gt-bite")
        with pytest.raises(PermissionDenied) as denied:
            world.check.verdict()
    finally:
        role.inline = saved
    message = str(denied.value)
    assert f"step 'Processing job (dataprep image)': role {role.label} ({role.arn})" in message, message
    assert f"may not s3:GetObject on arn:aws:s3:::{LABELING_BUCKET}/tools-job-0/images/" in message, message


def test_coco_labels(world: World) -> None:
    datasets = world.output("Dev", "Data", "DatasetsBucketName")
    with _as_operator(world):
        manifest = _labels(world, "coco", bucket=datasets, prefix="raw/coco-job/images")
        coco = _to_coco(manifest, world.workdir / "coco" / "instances.json")
        uri = f"s3://{datasets}/raw/coco-job/instances.json"
        upload(coco, uri)
        code, job = _dataprep_job(world, uri, f"s3://{datasets}/datasets/coco-job/")
    assert code == 0 and job is not None, f"dataprep_job exited {code}"
    status = run_processing_job(world, job, world.workdir / "processing-coco")
    world.check.verdict()
    assert status == 0, f"the Processing job exited {status}"


def _to_coco(manifest: Path, target: Path) -> Path:
    """The same labels as a COCO detection file (images named by their S3 key under the COCO file's folder)."""
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    categories: dict[int, str] = {}
    for i, line in enumerate(manifest.read_text().splitlines()):
        record = json.loads(line)
        label = next(k for k in record if k.endswith("-ref") and not k.endswith("source-ref"))
        size = record[label]["image_size"][0]
        images.append({"id": i + 1, "file_name": "images/" + record["source-ref"].rsplit("/", 1)[1],
                       "width": size["width"], "height": size["height"]})  # fmt: skip
        for box in record[label]["annotations"]:
            categories[box["class_id"]] = record[f"{label}-metadata"]["class-map"][str(box["class_id"])]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": box["class_id"] + 1,
                                "bbox": [box["left"], box["top"], box["width"], box["height"]],
                                "area": box["width"] * box["height"], "iscrowd": 0})  # fmt: skip
    cats = [{"id": k + 1, "name": v} for k, v in sorted(categories.items())]
    target.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return target


def test_labels_under_raw_become_a_dataset_version(world: World) -> None:
    """README step 1-2: the manifest and the images its source-refs name, under the datasets bucket's raw/;
    `scripts.dataprep_job` checks and starts the job; the Processing job (as the dataprep role) writes the dataset,
    dataset.json last."""
    datasets = world.output("Dev", "Data", "DatasetsBucketName")
    with _as_operator(world):
        manifest = _labels(world, "gt-raw", bucket=datasets, prefix="raw/tools-job-1/images")
        manifest_uri = f"s3://{datasets}/raw/tools-job-1/output.manifest"
        upload(manifest, manifest_uri)
        code, job = _dataprep_job(world, manifest_uri, f"s3://{datasets}/datasets/tools-v1/")
    assert code == 0 and job is not None, f"dataprep_job exited {code}"
    assert run_processing_job(world, job, world.workdir / "processing-raw") == 0
    admin_s3 = world.cloud.admin(world.account("Dev")).client("s3")
    head = admin_s3.head_object(Bucket=datasets, Key=f"datasets/tools-v1/{DATASET_JSON}")
    world.state["dataset"] = {
        "bucket": datasets,
        "key": f"datasets/tools-v1/{DATASET_JSON}",
        "etag": head["ETag"],
    }
    world.check.verdict()


# ------------------------------------------------------------------------------------------------ 3. training -> registry
def test_dataset_event_starts_a_training_job(world: World) -> None:
    """README step 3: the dataset.json the job wrote last -> EventBridge -> the runner Lambda (runner role)."""
    dataset = world.state["dataset"]
    event = s3_event(dataset["key"], bucket=dataset["bucket"], etag=dataset["etag"].strip('"'))
    answer = _handler(world, "Dev-Training", "RunnerFunction", "runner Lambda (dataset event)", event)
    assert answer["status"] == "started", answer
    world.state["job_name"] = answer["job_name"]
    world.check.verdict()


def test_training_job_runs_as_the_training_role(world: World) -> None:
    """The training job SageMaker runs from the runner's request: image pulled and the dataset channel staged with
    the training role, the container's entrypoint run for real (tiny: 1 epoch at 160 px, the fixtures' settings),
    /opt/ml/model packed to model.tar.gz at the job's output path with the training role."""
    admin = world.cloud.admin(world.account("Dev")).client("sagemaker")
    job = admin.describe_training_job(TrainingJobName=world.state["job_name"])
    role = world.cloud.roles[job["RoleArn"]]
    root = world.workdir / "opt_ml"
    with world.check.as_role("training job (train image)", role):
        pull_image(world, role, job["AlgorithmSpecification"]["TrainingImage"])
        [channel] = [c for c in job["InputDataConfig"] if c["ChannelName"] == "dataset"]
        staged = world.workdir / "channel-dataset"
        download_prefix(world, channel["DataSource"]["S3DataSource"]["S3Uri"], staged)
    # every stage serves fp32 (infra/stages.py): the optional int8 graph is not part of the journey
    hyperparameters = {**FAST_HYPERPARAMETERS, "epochs": "1", "int8": "false"}
    run = run_training(
        make_opt_ml(root, dataset=staged, pretrained=pretrained_checkpoint(), hyperparameters=hyperparameters)
    )
    assert run.returncode == 0, f"training exited {run.returncode}: {run.failure}\n{run.output[-3000:]}"
    world.state["train_log"] = run.output
    assert "val:mAP50-95" in record_final_metrics(world, job, run.output), (
        "no final metrics in the training log"
    )
    archive = model_tar(run.model_dir, world.workdir / "model.tar.gz")
    with world.check.as_role("training job (model upload)", role):
        upload(archive, job["ModelArtifacts"]["S3ModelArtifacts"])
    world.state["model_data"] = job["ModelArtifacts"]["S3ModelArtifacts"]
    world.check.verdict()


def test_registrar_registers_the_model_version(world: World) -> None:
    answer = _handler(
        world, "Dev-Training", "RegistrarFunction", "registrar Lambda (job completed)",
        state_change(world.state["job_name"], "Completed"),
    )  # fmt: skip
    assert answer["status"] == "registered", answer
    world.state["package_arn"] = answer["model_package_arn"]
    world.check.verdict()


def test_the_check_names_a_grant_the_templates_lack(world: World) -> None:
    """The journey bites: the runner role's synthesized policy without its iam:PassRole statement (as if the grant
    were removed from infra/) fails the runner step with the step, the role, the action and the resource."""
    import copy

    role = world.role("Dev", "Training", "RunnerFunctionServiceRole")
    saved = copy.deepcopy(role.inline)
    for document in role.inline.values():
        document["Statement"] = [
            s for s in document["Statement"] if "iam:PassRole" not in json.dumps(s["Action"])
        ]
    try:
        dataset = world.state["dataset"]
        event = s3_event(dataset["key"], bucket=dataset["bucket"], etag="0" * 32)
        answer = _handler(world, "Dev-Training", "RunnerFunction", "runner Lambda (grant removed)", event)
        assert answer["status"] == "started", answer
        with pytest.raises(PermissionDenied) as denied:
            world.check.verdict()
    finally:
        role.inline = saved
    message = str(denied.value)
    assert "step 'runner Lambda (grant removed)': role Dev-Training/RunnerFunctionServiceRole" in message, (
        message
    )
    assert "may not iam:PassRole on arn:aws:iam::111111111111:role/Dev-Training-TrainingRole" in message, (
        message
    )


# ------------------------------------------------------------------------------------------------ 3b. release
REGION = "eu-west-1"
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _release(world: World, *argv: str) -> int:
    from scripts.release.__main__ import main

    return main(["--releases-dir", str(world.releases_dir), "--region", REGION, *argv])


def test_release_approve(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """README "Releasing": the operator reviews the version the registrar registered and approves it."""
    version = world.state["package_arn"].rsplit("/", 1)[1]
    with _as_operator(world):
        code = _release(world, "approve", "--stage", "Dev", "--version", version, "--reason", "journey")
    assert code == 0, capsys.readouterr().err


def _hand_built_gpu_image(world: World) -> str:
    """What README leaves the operator to do for the GPU serve variant Dev does not run: build containers/serve
    with its CUDA base and push it (here: into the bootstrap's asset repository, as a `docker push` would)."""
    from tests.journey.steps import image_manifest

    ecr = world.cloud.admin(world.account("Dev")).client("ecr")
    [repo] = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]
              if "container-assets" in r["repositoryName"]]  # fmt: skip
    with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(repositoryName=repo, imageManifest=image_manifest("serve-gpu"), imageTag="serve-gpu")
    return f"{world.account('Dev')}.dkr.ecr.{REGION}.amazonaws.com/{repo}:serve-gpu"


def _create(world: World, release_id: str, *extra: str) -> tuple[int, str]:
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with _as_operator(world), redirect_stderr(err):
        code = _release(world, "create", "--from-stage", "Dev", "--release-id", release_id, "--git-commit",
                        GIT_COMMIT, *extra)  # fmt: skip
    return code, err.getvalue()


def test_release_create_takes_every_image_from_one_build(world: World) -> None:
    from infra.release_record import load_release, release_path

    code, err = _create(world, "r-journey-0", "--no-promote")
    assert code == 0, err
    release = load_release(release_path(world.releases_dir, "r-journey-0"))
    assert set(release.images.serve) == {"cpu", "gpu"}, (
        f"step 'release create': release r-journey-0 has serve variants {sorted(release.images.serve)}; "
        "Staging/Prod (ml.g5.xlarge) need 'gpu'"
    )


def test_release_create(world: World) -> None:
    """`python -m scripts.release create --from-stage Dev`: the Approved version, its model's sha256, every image
    copied into Dev's Data repositories by digest (the GPU serve image from --serve, see above)."""
    from infra.release_record import current_release_id, load_release, release_path

    code, err = _create(world, "r-journey-1", "--serve", f"gpu={_hand_built_gpu_image(world)}")
    assert code == 0, err
    assert current_release_id(world.releases_dir) == "r-journey-1"
    release = load_release(release_path(world.releases_dir, "r-journey-1"))
    repos = {
        world.output("Dev", "Data", f"{n.capitalize()}RepositoryUri") for n in ("dataprep", "train", "serve")
    }
    images = [release.images.dataprep, release.images.train, *release.images.serve.values()]
    assert {i.repository for i in images} <= repos, images
    assert release.model.model_data_uri == world.state["model_data"]
    world.state["release1"] = release


def _preflight(
    world: World, stage: str, capsys: pytest.CaptureFixture[str], release_id: str | None = None
) -> tuple[int, str]:
    from infra.release_record import release_path

    path = release_path(world.releases_dir, release_id or world.state["release1"].release_id)
    capsys.readouterr()
    with _as_operator(world):
        code = _release(world, "preflight", "--stage", stage, "--release-file", str(path),
                        "--stage-role-arn", f"arn:aws:iam::{world.account(stage)}:role/journey-admin")  # fmt: skip
    return code, capsys.readouterr().out


def test_preflight_for_staging(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The gate before Staging: the package, its model data and the model object's checksum as the release says.
    Not judged here: the quality bar (a 1-epoch model of 48 generated images) and the instance quota (moto has no
    Service Quotas values)."""
    _code, out = _preflight(world, "Staging", capsys)
    lines = {
        line.split(":")[0].split("  ", 1)[1]: line
        for line in out.splitlines()
        if line[:4] in ("PASS", "FAIL")
    }
    for name in ("package approved", "package model data", "model object"):
        assert lines.get(name, "").startswith("PASS"), out


def test_preflight_checks_every_release_image(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Each image of the release (dataprep, train, every serve variant) exists by digest in the registry."""
    _code, out = _preflight(world, "Staging", capsys)
    release = world.state["release1"]
    for field in release.image_fields():
        assert f"PASS  image {field}: " in out, f"step 'preflight Staging': {field} not checked:\n{out}"


# ------------------------------------------------------------------------------------------------ 4. stages
def _deploy_release(
    world: World, release: Release, stages: tuple[str, ...] = ("Dev", "Staging", "Prod")
) -> None:
    """`npx cdk deploy '<Stage>/*'` for each stage, Dev first (its Data stack holds the registry); SageMaker starts
    the endpoint's instance (its Model's image and model data read with the execution role, then the real serve
    app on that model.tar.gz); `release verify` (the pipeline's gate, as the stage's ReleaseVerifierRole) runs
    verify_endpoint's checks against it and records the release in the stage's history."""
    app = world.synth(release)
    for stage in stages:
        world.deploy(app, stage)
        _start_instance(world, stage, f"deploy {release.release_id}")
        _verify(world, stage, release)


def _serving_reads(world: World, stage: str, step: str, *, model: object | None = None) -> bytes:
    """What SageMaker does when the stage's Model starts an instance (deploy, scale-out, replacement): pull the
    image and download the model data with the Model's execution role. Returns the model.tar.gz."""
    import boto3

    models = [m for m in world.cloud.models if m.stack == f"{stage}-Serving"]
    target = model if isinstance(model, ServingModel) else models[-1]
    role = world.cloud.roles[target.role_arn]
    with world.check.as_role(f"{step}: {stage} Model {target.logical_id}", role):
        bucket, key = s3_uri_parts(target.model_data_url)  # the model data first: both reads are judged even
        archive = (
            boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        )  # when the image is gone
        pull_image(world, role, target.image)
    return bytes(archive)


def _start_instance(world: World, stage: str, step: str) -> None:
    """The stage's endpoint gets an instance of its newest Model: the reads above, then ``serve`` on 127.0.0.1."""
    [*_, model] = [m for m in world.cloud.models if m.stack == f"{stage}-Serving"]
    archive = _serving_reads(world, stage, step, model=model)
    world.hosting.start(world.output(stage, "Serving", "EndpointName"), model, archive)


def _verify(world: World, stage: str, release: Release) -> str:
    """`python -m scripts.release verify --stage <Stage>` as the pipeline's post-deploy step runs it: from the
    pipeline account, assuming the stage's ReleaseVerifierRole (the Serving stack's output); sagemaker-runtime
    reaches the local instance through the hosting adapter. Returns its report."""
    from infra.release_record import release_path

    step = f"release verify {stage} ({release.release_id})"
    out = io.StringIO()
    with (
        world.check.stepping(step),
        _as_operator(world, account=world.pipeline.account),
        environment({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": world.hosting.url}),
        redirect_stdout(out),
    ):
        code = _release(
            world, "verify", "--stage", stage,
            "--release-file", str(release_path(world.releases_dir, release.release_id)),
            "--stage-role-arn", world.output(stage, "Serving", "ReleaseVerifierRoleArn"),
        )  # fmt: skip
    report = out.getvalue()
    assert code == 0, f"step '{step}': exit {code}\n{report}"
    world.state.setdefault("verified", {})[(stage, release.release_id)] = report
    return report


def test_staging_and_prod_serve_the_release_across_accounts(world: World) -> None:
    """README "Releasing": every stage deploys the release's digests and model; Staging and Prod, in their own
    accounts, read Dev's images and model data with their own execution roles (bucket, repository and key policies
    of Dev's Data stack)."""
    _deploy_release(world, world.state["release1"])
    world.check.verdict()
    for stage in (
        "Dev",
        "Staging",
        "Prod",
    ):  # verify_endpoint's checks ran against the served model, as the gate role
        report = world.state["verified"][(stage, "r-journey-1")]
        for line in (
            "PASS  invocation: model ",
            "PASS  model version: ",
            "PASS  release id: ",
            "PASS  data capture",
        ):
            assert line in report, (stage, report)
        endpoint = world.output(stage, "Serving", "EndpointName")
        assert any(
            step == f"release verify {stage} (r-journey-1)"
            and role.startswith(f"{stage}-Serving/ReleaseVerifier")
            and (action, resource[-len(endpoint) :]) == ("sagemaker:InvokeEndpoint", endpoint)
            for step, role, action, resource in world.check.checked
        ), f"{stage}: verify did not invoke the endpoint as the stage's ReleaseVerifierRole"
    for stage in ("Staging", "Prod"):  # the reads were judged, across accounts, on Dev's resource policies
        judged = {
            action
            for step, _role, action, _res in world.check.checked
            if step.startswith(f"deploy r-journey-1: {stage}")
        }
        assert {"ecr:BatchGetImage", "s3:GetObject", "kms:Decrypt"} <= judged, (stage, judged)


def test_verify_bites_without_the_invoke_grant(world: World) -> None:
    """The verify gate runs with its own role's permissions: Staging's ReleaseVerifierRole without
    sagemaker:InvokeEndpoint (as if infra/constructs/release_verifier.py did not grant it) fails the verify step,
    naming the step, the role, the action and the endpoint."""
    role = world.role("Staging", "Serving", "ReleaseVerifierRole")
    saved = copy.deepcopy(role.inline)
    for document in role.inline.values():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != "sagemaker:InvokeEndpoint"] or [
                "sagemaker:DescribeEndpoint"
            ]
    try:
        _verify(world, "Staging", world.state["release1"])
        with pytest.raises(PermissionDenied) as denied:
            world.check.verdict()
    finally:
        role.inline = saved
    endpoint = world.output("Staging", "Serving", "EndpointName")
    message = str(denied.value)
    assert f"step 'release verify Staging (r-journey-1)': role {role.label} ({role.arn})" in message, message
    assert (
        f"may not sagemaker:InvokeEndpoint on arn:aws:sagemaker:eu-west-1:{world.account('Staging')}:endpoint/{endpoint}"
        in message
    ), message


def test_missing_serve_gpu_bites(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 22's build-once fix, put back: a release whose serve.gpu names an image nobody built and pushed (what
    release create wrote before it took every serve variant from the registry's one build) fails Staging's preflight
    naming the image, and Staging's Model (ml.g5) cannot pull it, naming the step, the role, the action and the image;
    a release with no GPU image at all is refused by the synth of the GPU stage."""
    import dataclasses
    import hashlib

    from infra.config import ConfigError
    from infra.release_record import release_path
    from infra.stage_release import for_stage
    from tests.journey.steps import repository_arn

    release = world.state["release1"]
    never_built = "sha256:" + hashlib.sha256(b"serve-gpu, never built").hexdigest()
    gpu = release.images.serve["gpu"].model_copy(update={"digest": never_built})
    images = release.images.model_copy(update={"serve": {**release.images.serve, "gpu": gpu}})
    bad = release.model_copy(update={"release_id": "r-journey-nogpu", "images": images})
    release_path(world.releases_dir, bad.release_id).write_text(bad.to_json())

    code, out = _preflight(world, "Staging", capsys, release_id=bad.release_id)
    assert code != 0 and f"FAIL  image images.serve.gpu: {gpu.uri} does not exist" in out, out

    step = "deploy r-journey-nogpu"
    [*_, staging] = [m for m in world.cloud.models if m.stack == "Staging-Serving"]
    role = world.cloud.roles[staging.role_arn]
    with pytest.raises(AssertionError) as failed:
        _serving_reads(world, "Staging", step, model=dataclasses.replace(staging, image=gpu.uri))
    message = str(failed.value)
    assert f"step '{step}: Staging Model {staging.logical_id}': role {role.label}" in message, message
    assert f"ecr:BatchGetImage on {repository_arn(gpu.uri)}: {gpu.uri} is not in the registry" in message, (
        message
    )

    no_gpu = release.model_copy(
        update={"images": release.images.model_copy(update={"serve": {"cpu": release.images.serve["cpu"]}})}
    )
    with pytest.raises(ConfigError) as refused:
        for_stage(no_gpu, world.stages["Staging"])  # what `npx cdk deploy 'Staging/*'` synthesizes with
    assert "field 'images.serve.gpu'" in str(refused.value) and "Staging" in str(refused.value), refused.value


# ------------------------------------------------------------------------------------------------ 5. rollback, teardown
def test_second_release(world: World) -> None:
    """A second version through the same path: operator start -> runner -> training job (the container's output
    is job 1's artifact again: a second real training run would only cost time) -> registrar -> approve -> create
    -> every stage deploys r-journey-2."""
    from scripts.training import main as training

    dataset = world.state["dataset"]
    uri = f"s3://{dataset['bucket']}/{dataset['key'].rsplit('/', 1)[0]}/"
    admin = world.cloud.admin(world.account("Dev")).client("sagemaker")
    before = {j["TrainingJobName"] for j in admin.list_training_jobs()["TrainingJobSummaries"]}
    with _as_operator(world):
        assert (
            training(["--region", REGION, "start", "--stage", "Dev", "--dataset-uri", uri, "-p", "epochs=2"])
            == 0
        )
    [name] = [
        j["TrainingJobName"]
        for j in admin.list_training_jobs()["TrainingJobSummaries"]
        if j["TrainingJobName"] not in before
    ]
    job = admin.describe_training_job(TrainingJobName=name)
    record_final_metrics(world, job, world.state["train_log"])
    # Issue 27: job 1's approved version is the champion; the training role stages its model.tar.gz.
    [champion] = [c for c in job["InputDataConfig"] if c["ChannelName"] == "champion"]
    assert champion["DataSource"]["S3DataSource"]["S3Uri"] == world.state["model_data"]
    assert job["HyperParameters"]["champion_version"] == world.state["package_arn"]
    with world.check.as_role("training job 2 (model upload)", world.cloud.roles[job["RoleArn"]]):
        download_prefix(world, world.state["model_data"], world.workdir / "channel-champion")
        upload(
            _with_comparison(world, world.workdir / "model.tar.gz"), job["ModelArtifacts"]["S3ModelArtifacts"]
        )
    answer = _handler(
        world,
        "Dev-Training",
        "RegistrarFunction",
        "registrar Lambda (job 2)",
        state_change(name, "Completed"),
    )
    assert answer["comparison_report"].endswith(f"/{name}/evaluation/comparison.json"), answer
    with _as_operator(world):
        version = answer["model_package_arn"].rsplit("/", 1)[1]
        assert (
            _release(world, "approve", "--stage", "Dev", "--version", version, "--reason", "journey 2") == 0
        )
    code, err = _create(world, "r-journey-2", "--serve", f"gpu={_hand_built_gpu_image(world)}")
    assert code == 0, err
    from infra.release_record import load_release, release_path

    world.state["release2"] = load_release(release_path(world.releases_dir, "r-journey-2"))
    assert world.state["release2"].model.model_data_uri != world.state["release1"].model.model_data_uri
    _deploy_release(world, world.state["release2"])
    world.check.verdict()


def _with_comparison(world: World, archive: Path) -> Path:
    """Job 1's model.tar.gz with the comparison the training container writes against job 1 (its model.json
    member rewritten), as job 2's output: the registrar reads it and writes its evaluation report."""
    import io
    import tarfile

    from app.contracts.comparison import ChampionRef
    from tests.fixtures.comparisons import NOT_WORSE, compared

    champion = ChampionRef(version=world.state["package_arn"], model_data=world.state["model_data"])
    comparison = compared(NOT_WORSE).model_copy(update={"champion": champion, "reports": {}})
    target = world.workdir / "model-compared.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name == "model.json":
                data = json.dumps(
                    {**json.loads(data), "comparison": comparison.model_dump(mode="json")}
                ).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return target


def test_alarm_rollback_lands_on_a_model_that_can_read_its_data(world: World) -> None:
    """SageMaker's auto-rollback returns Prod's endpoint to the previous endpoint config: its retained Model (of
    r-journey-1) starts instances again (scale-out, replacement) with its execution role."""
    old = world.state["release1"].model.model_data_uri
    retained = [m for m in world.cloud.models if m.stack == "Prod-Serving" and m.model_data_url == old]
    assert retained, "Prod's Model of r-journey-1 was not retained"
    _serving_reads(world, "Prod", "alarm rollback to r-journey-1", model=retained[-1])
    world.check.verdict()


def test_the_rollback_read_bites_without_the_model_store_grant(world: World) -> None:
    """Issue 22's rollback read, removed again: the Prod execution role reading only today's model.tar.gz (as before
    the fix) fails the rolled-back Model's download with the step, the role, the action and the object."""
    import copy

    old = world.state["release1"].model.model_data_uri
    [*_, retained] = [m for m in world.cloud.models if m.stack == "Prod-Serving" and m.model_data_url == old]
    role = world.cloud.roles[retained.role_arn]
    saved = copy.deepcopy(role.inline), copy.deepcopy(role.managed)
    current = world.state["release2"].model.model_data_uri.removeprefix("s3://")
    for document in role.documents():  # every s3:GetObject statement narrowed to the newest release's object
        for statement in document["Statement"]:
            if "s3:GetObject" in json.dumps(statement.get("Action")):
                statement["Resource"] = f"arn:aws:s3:::{current}"
    try:
        with pytest.raises(PermissionDenied) as denied:
            _serving_reads(world, "Prod", "alarm rollback (grant narrowed)", model=retained)
            world.check.verdict()
    finally:
        role.inline, role.managed = saved
    message = str(denied.value)
    assert (
        f"step 'alarm rollback (grant narrowed): Prod Model {retained.logical_id}': role {role.label}"
        in message
    )
    assert f"may not s3:GetObject on arn:aws:s3:::{old.removeprefix('s3://')}" in message, message


def test_release_rollback_finds_the_previous_release(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m scripts.release rollback --stage Prod`: Prod's history (SSM) names r-journey-1; CURRENT points at
    it; deploying it gives Prod r-journey-1's model again, readable by its role."""
    from infra.release_record import current_release_id

    with _as_operator(world, "Prod"):
        code = _release(world, "rollback", "--stage", "Prod")
    assert code == 0, capsys.readouterr().err
    assert current_release_id(world.releases_dir) == "r-journey-1"
    _deploy_release(world, world.state["release1"], stages=("Prod",))
    world.check.verdict()


def test_dev_teardown_leaves_staging_and_prod_serving(world: World) -> None:
    """README "Teardown": `npx cdk destroy 'Dev/Serving'`, `'Dev/Training'`, `'Dev/Data'`; then Staging and Prod
    scale out: their Models pull the release's images and model data from Dev's registry."""
    world.state["dev_data"] = world.cloud.stacks["Dev-Data"]
    for stack in ("Serving", "Training", "Data"):
        world.cloud.destroy(f"Dev-{stack}")
    failures = []
    for stage in ("Staging", "Prod"):
        try:
            _serving_reads(world, stage, "after Dev's teardown")
        except AssertionError as exc:
            failures.append(str(exc))
    world.check.verdict()
    assert not failures, "\n".join(failures)


def test_dev_teardown_bites_without_the_retention(world: World) -> None:
    """The teardown defect, put back: Dev's registry (its repositories, the model store and its bucket policy, the
    key) deleted with Dev/Data, as CloudFormation deletes them without their DeletionPolicy Retain; Staging's Model
    then fails to read its model data and to pull its image, each naming the step, the role, the action and the
    resource. (The journey's last destructive step: nothing after it reads Dev's registry.)"""
    from tests.journey.loader import _delete
    from tests.journey.steps import repository_arn

    stack = world.state["dev_data"]
    retained = [
        (logical, resource)
        for logical, resource in stack.template["Resources"].items()
        if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate") and logical in stack.physical
    ]
    kinds = {resource["Type"] for _logical, resource in retained}
    assert {"AWS::ECR::Repository", "AWS::S3::Bucket", "AWS::KMS::Key"} <= kinds, kinds
    admin = world.cloud.admin(stack.account)
    for logical, resource in reversed(retained):
        _delete(world.cloud, admin, resource, stack.physical[logical], stack, logical)

    step = "after Dev's teardown without retention"
    [*_, model] = [m for m in world.cloud.models if m.stack == "Staging-Serving"]
    role = world.cloud.roles[model.role_arn]
    with pytest.raises(PermissionDenied) as data_read:
        _serving_reads(world, "Staging", step, model=model)
    with (
        world.check.as_role(f"{step}: Staging Model {model.logical_id}", role),
        pytest.raises(AssertionError),
    ):
        pull_image(world, role, model.image)
    with pytest.raises(PermissionDenied) as image_pull:
        world.check.verdict()
    named = f"step '{step}: Staging Model {model.logical_id}': role {role.label} ({role.arn})"
    assert named in str(data_read.value), data_read.value
    assert f"may not s3:GetObject on arn:aws:s3:::{model.model_data_url.removeprefix('s3://')}" in str(
        data_read.value
    ), data_read.value
    assert named in str(image_pull.value), image_pull.value
    assert f"may not ecr:BatchGetImage on {repository_arn(model.image)}" in str(image_pull.value), (
        image_pull.value
    )


# ------------------------------------------------------------------------------------------------ 6. permissions
# Wildcard actions no journey call used (the report, build/journey-permissions.json, lists every grant), by role label
# pattern and action pattern. Needed off the journey's path:
JUSTIFIED_UNUSED_WILDCARDS: dict[tuple[str, str], str] = {
    (
        "*-Training/RunnerFunctionServiceRole*",
        "kms:GenerateDataKey*",
    ): "publishing to the KMS-encrypted notify topic "
    "(SNS SSE asks the publisher for the data key); the journey's path publishes nothing",
    ("*-Training/RegistrarFunctionServiceRole*", "kms:GenerateDataKey*"): "the same topic, for the registrar",
    (
        "*-Training/*Role*",
        "s3:Abort*",
    ): "grants only s3:AbortMultipartUpload: cleaning up a failed multipart upload; "
    "the journey's uploads are single PUTs",
}
# ... and excess: what CDK's grant_read/grant_read_write and key grants add that no step of the path calls. Kept
# listed (not silently allowed) until infra narrows them: each is a finding of the permissions report.
KNOWN_EXCESS_WILDCARDS: dict[tuple[str, str], str] = {
    (
        "*-Training/DataprepRole*",
        "s3:GetBucket*",
    ): "grant_read of the datasets bucket: 16 bucket-configuration reads",
    ("*-Training/TrainingRole*", "s3:GetBucket*"): "grant_read(_write) of the datasets and artifacts buckets",
    (
        "*-Training/DataprepRole*",
        "kms:ReEncrypt*",
    ): "grant_encrypt_decrypt on the data key; S3 SSE-KMS never re-encrypts",
    ("*-Training/TrainingRole*", "kms:ReEncrypt*"): "the same, for the training role",
    ("*-Training/TrainingRole*", "s3:DeleteObject*"): "grant_read_write on checkpoints/ and training-output/",
    (
        "*-Training/TrainingRole*",
        "s3:GetObject*",
    ): "grant_read_write on training-output/ (only checkpoints/ is read "
    "back, on a resumed job, which the journey does not run)",
    (
        "*-Training/TrainingRole*",
        "s3:List*",
    ): "grant_read_write: 18 list actions where a resume lists checkpoints/",
}


def test_permissions_report(world: World) -> None:
    """Excessive permissions, measured (tests/journey/permissions.py): every role the journey ran as, its grants
    against the calls that used them, written to build/journey-permissions.json; a wildcard action no call used must
    be listed above with its reason."""
    import fnmatch

    from infra.paths import REPO_ROOT
    from tests.journey import permissions

    found = permissions.report(world.check, world.cloud)
    path = permissions.write(found, REPO_ROOT / "build" / "journey-permissions.json")
    assert json.loads(path.read_text())["roles"], path
    ran = found["roles"]
    for stack, prefix in (
        ("Dev-Training", "DataprepRole"), ("Dev-Training", "TrainingRole"),
        ("Dev-Training", "RunnerFunctionServiceRole"), ("Dev-Training", "RegistrarFunctionServiceRole"),
        *((f"{s}-Serving", "Endpoint") for s in ("Dev", "Staging", "Prod")),
        *((f"{s}-Serving", "ReleaseVerifier") for s in ("Dev", "Staging", "Prod")),
    ):  # fmt: skip
        assert any(label.startswith(f"{stack}/{prefix}") for label in ran), (stack, prefix, sorted(ran))

    def justified(unused: permissions.Unused) -> bool:
        return any(
            fnmatch.fnmatchcase(unused.role, role) and unused.action_pattern == action
            for role, action in {**JUSTIFIED_UNUSED_WILDCARDS, **KNOWN_EXCESS_WILDCARDS}
        )

    unjustified = [u for r in ran.values() for u in r["_unused"] if u.wildcard and not justified(u)]
    listed = "\n".join(f"{u.role}: {u.action_pattern} ({u.policy} #{u.statement})" for u in unjustified)
    assert not unjustified, (
        "wildcard actions no journey call used (justify them in JUSTIFIED_UNUSED_WILDCARDS, list them in "
        f"KNOWN_EXCESS_WILDCARDS, or narrow the grant):\n{listed}"
    )
