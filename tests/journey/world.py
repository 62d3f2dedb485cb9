"""The journey's world: three accounts (the example Dev, Staging and Prod of infra/stages.py EXAMPLE_ENVIRONMENTS) in
one moto, templates synthesized from infra/ the way a deploy would (tests/infra/synthesized.py), the policy check,
and what one step hands the next (the dataset, the job, the package, the releases)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.app import example_pipeline_stages
from infra.config import PipelineConfig, StageConfig
from infra.release_record import Release
from tests.infra.synthesized import SynthesizedApp, synthesize
from tests.journey.hosting import Hosting
from tests.journey.loader import Cloud, Role
from tests.journey.policy import PolicyCheck

STAGE_ORDER = ("Dev", "Staging", "Prod")
STACK_ORDER = ("Data", "Training", "Serving")


@dataclass
class World:
    cloud: Cloud
    check: PolicyCheck
    workdir: Path
    releases_dir: Path
    stages: dict[str, StageConfig]
    pipeline: PipelineConfig
    hosting: Hosting
    state: dict[str, Any] = field(default_factory=dict)
    _synth_count: int = 0
    _synthesized: dict[str, SynthesizedApp] = field(default_factory=dict)

    @classmethod
    def example(cls, cloud: Cloud, check: PolicyCheck, workdir: Path, hosting: Hosting) -> World:
        stages, pipeline = example_pipeline_stages()
        releases = workdir / "releases"
        releases.mkdir()
        return cls(
            cloud=cloud, check=check, workdir=workdir, releases_dir=releases, stages=stages, pipeline=pipeline,
            hosting=hosting,
        )  # fmt: skip

    def account(self, stage: str) -> str:
        account = self.stages[stage].account
        assert account, f"stage {stage} has no account"
        return account

    def synth(self, release: Release | None, **kwargs: Any) -> SynthesizedApp:
        """What ``cdk synth`` gives for every stage with ``release`` (None: the first deploy, no release yet). With a
        release the app holds the example pipeline (README step 7: "let the pipeline do 7 and 8"): each stage's
        Serving stack then has the ReleaseVerifierRole that the pipeline's verify gate assumes."""
        if release is not None:
            kwargs.setdefault("pipeline", self.pipeline)
        key = f"{release.release_id if release else None}:{sorted(kwargs.items(), key=lambda kv: kv[0])}"
        if key not in self._synthesized:  # a rollback redeploys a release synthesized before: same templates
            self._synth_count += 1
            outdir = self.workdir / f"cdk.out.{self._synth_count}"
            self._synthesized[key] = synthesize(self.stages, outdir, release=release, **kwargs)
        return self._synthesized[key]

    def deploy(self, app: SynthesizedApp, stage: str, stacks: tuple[str, ...] = STACK_ORDER) -> None:
        """``npx cdk deploy '<stage>/*'``: the stage's stacks in dependency order, into the stage's account."""
        for stack in stacks:
            self.cloud.deploy(
                f"{stage}-{stack}", app.template_json(stage, stack), account=self.account(stage)
            )

    def role(self, stage: str, stack: str, logical_prefix: str) -> Role:
        return self.cloud.role(f"{stage}-{stack}", logical_prefix)

    def output(self, stage: str, stack: str, key: str) -> str:
        return self.cloud.stacks[f"{stage}-{stack}"].outputs[key]


def model_tar(model_dir: Path, target: Path) -> Path:
    """``model.tar.gz`` as SageMaker packs ``/opt/ml/model`` at the end of a training job (files at the root)."""
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return target


def s3_uri_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
