"""Typed, validated configuration of one deployment stage (dev, staging, prod).

Stage differences are data, never ``if stage == "prod"``. The values live in ``infra/stages.py``; this module says
what they mean and rejects impossible ones at synth time with the stage and field in the message.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.contracts import cuda, instance_types, storage
from app.contracts import serving_environment as serving_env
from app.contracts.artifact import Precision
from app.contracts.hyperparameters import check_autobatch, check_int8_bars, parse_hyperparameters
from infra.image_uri import PINNED_IMAGE_URI
from infra.max_in_force import max_in_force_expression
from infra.schedule import schedule_holds

# CloudWatch Logs retention periods (days); infra/constructs/training_lambda.py uses this list too.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


class ConfigError(ValueError):
    """A stage configuration that cannot be deployed."""


def _instance_type(value: str) -> str:
    instance_types.family(value)  # raises InstanceTypeError (a ValueError) with the reason
    instance_types.check_architecture(value)  # Graviton: our images are linux/amd64 only
    return value


InstanceType = Annotated[str, AfterValidator(_instance_type)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageSettings(_Strict):
    """Where each container image comes from: built from ``containers/<name>`` (None) or a pinned digest.

    Pin ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<digest>`` to promote the exact image a previous
    stage ran.
    """

    dataprep: str | None = None
    train: str | None = None
    serve: str | None = None

    @model_validator(mode="after")
    def _digests(self) -> ImageSettings:
        for name in ("dataprep", "train", "serve"):
            uri = getattr(self, name)
            if uri is not None and not PINNED_IMAGE_URI.match(uri):
                raise ValueError(
                    f"images.{name}: expected '<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:"
                    f"<64 hex>', got '{uri}'"
                )
        return self


def _training_family(value: str) -> str:
    instance_types.check_training(value)  # a GPU family the table allows for training
    return value


class TrainingSettings(_Strict):
    """Training jobs started by the runner Lambda."""

    instance_type: Annotated[InstanceType, AfterValidator(_training_family)] = "ml.g5.xlarge"
    instance_count: instance_types.TrainingInstanceCount = 1  # refused at synth if above one
    volume_size_gb: int = Field(50, ge=5, le=16384)
    max_runtime_hours: float = Field(12, gt=0, le=28 * 24)
    use_spot: bool = True
    max_wait_hours: float = Field(24, gt=0, le=28 * 24, description="spot: >= max_runtime_hours")
    network_isolation: bool = True
    quality_bar_map50_95: float = Field(
        0.5, ge=0, le=1, description="auto-approve a model version at or above"
    )
    default_hyperparameters: dict[str, str] = Field(default_factory=dict)
    int8_map_drop_cap: float = Field(
        0.01,
        ge=0,
        le=0.05,
        description="the loosest int8 gate a job of this stage may use (int8_max_map_drop): the runner refuses a "
        "request above it; 0.01 = 1 point of val mAP50-95",
    )
    int8_class_drop_cap: float = Field(
        0.05, ge=0, le=0.2, description="the same for the per-class bar (int8_max_class_drop)"
    )
    # The champion comparison (app/contracts/comparison.py): the candidate must not lose more than these to the
    # stage's Approved model, with this confidence, or the registrar leaves it for a person. Stage settings, not
    # request knobs: the registrar refuses a comparison made with looser ones.
    champion_map_drop_tolerance: float = Field(
        0.01,
        ge=0,
        le=0.05,
        description="largest tolerated drop of overall val mAP50-95 vs the champion (lower CI bound); 0.01 = 1 point",
    )
    champion_class_drop_tolerance: float = Field(
        0.05, ge=0, le=0.2, description="the same for any one class with enough val instances"
    )
    champion_min_class_instances: int = Field(
        20,
        ge=1,
        le=1000,
        description="a class with fewer val instances is listed as underpowered and never decides the verdict",
    )
    champion_confidence: float = Field(
        0.95, ge=0.8, le=0.999, description="confidence of the bootstrap intervals the verdict reads"
    )
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    launcher_reserved_concurrency: int | None = Field(
        None,
        ge=1,
        description="opt-in reserved concurrency of EACH launcher Lambda (runner, registrar); unset by default: a "
        "reservation fails CREATE in accounts whose unreserved concurrency would drop below 100 "
        "(`python -m scripts.training quota` checks it)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSettings:
        if self.use_spot and self.max_wait_hours < self.max_runtime_hours:
            raise ValueError(
                f"max_wait_hours ({self.max_wait_hours}) must be >= max_runtime_hours ({self.max_runtime_hours})"
                " when use_spot is on"
            )
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError("subnet_ids and security_group_ids must be given together (VPC config)")
        defaults = parse_hyperparameters(self.default_hyperparameters, source="default_hyperparameters")
        check_autobatch(defaults, self.instance_type)  # e.g. batch=-1 on ml.g5.12xlarge (4 GPUs)
        check_int8_bars(
            defaults, max_map_drop=self.int8_map_drop_cap, max_class_drop=self.int8_class_drop_cap
        )
        return self


class ScheduledCapacity(_Strict):
    """A scheduled change of the scaling bounds (e.g. business hours vs nights)."""

    name: str = Field(pattern=r"^[A-Za-z0-9-]{1,64}$")
    schedule: str = Field(description="Application Auto Scaling expression, e.g. 'cron(0 7 ? * MON-FRI *)'")
    min_capacity: int = Field(ge=0)
    max_capacity: int = Field(ge=1)
    max_hold_hours: float = Field(
        24,
        gt=0,
        le=7 * 24,
        description="longest it may stay in force (raise it for a window meant to span weekends)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScheduledCapacity:
        if not re.match(r"^(cron|rate|at)\(.+\)$", self.schedule):
            raise ValueError(f"schedule '{self.schedule}': expected cron(...), rate(...) or at(...)")
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) > max_capacity ({self.max_capacity})")
        return self


# A stack update that touches the scalable target re-registers it with min/max_capacity (CloudFormation owns them)
# whatever scheduled action is in force; only the next firing of that action restores its bounds.
REASSERT_WITHIN_MIN = 60


def _hours(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60:02d} min"


class AutoscalingSettings(_Strict):
    """Target tracking on the endpoint variant. Give the invocation target directly, or the measured max RPS
    one instance sustains (``scripts/loadtest.py`` prints it) and let the target be rps x safety x 60."""

    min_capacity: int = Field(1, ge=1)
    max_capacity: int = Field(2, ge=1)
    invocations_per_instance_target: float | None = Field(None, gt=0, description="per minute")
    measured_max_rps_per_instance: float | None = Field(None, gt=0)
    measured_precision: Precision = Field(
        "fp32",
        description="the SERVING_PRECISION measured_max_rps_per_instance was measured at (scripts/loadtest.py "
        "--precision); synth refuses it when it is not the endpoint's precision",
    )
    safety_factor: float = Field(0.5, gt=0, le=1)
    concurrency_target: float | None = Field(
        None, gt=0, description="high-resolution concurrent requests/model"
    )
    scale_in_cooldown_s: int = Field(300, ge=0)
    scale_out_cooldown_s: int = Field(60, ge=0)
    disable_scale_in: bool = False
    scheduled: tuple[ScheduledCapacity, ...] = ()

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSettings:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) > max_capacity ({self.max_capacity})")
        if (self.invocations_per_instance_target is None) == (self.measured_max_rps_per_instance is None):
            raise ValueError(
                "set exactly one of invocations_per_instance_target and measured_max_rps_per_instance"
            )
        return self

    def check_schedule(self) -> None:
        """Scheduled actions and the CloudFormation-managed bounds must not fight, and no window may silently hold
        longer than meant (e.g. a nightly action that nothing ends until Monday)."""
        base = (self.min_capacity, self.max_capacity)
        bounds = {a.name: (a.min_capacity, a.max_capacity) for a in self.scheduled}
        if base not in bounds.values():
            have = ", ".join(f"{n} {lo}..{hi}" for n, (lo, hi) in bounds.items())
            raise ValueError(
                f"autoscaling.min_capacity..max_capacity ({base[0]}..{base[1]}) must be the bounds of one "
                f"scheduled action (have {have}): CloudFormation sets them on every update of the scalable target, "
                "so they must be a state the schedule also produces"
            )
        max_in_force_expression(
            "m", self.scheduled, self.max_capacity
        )  # the capacity-at-max alarm can follow it
        holds = schedule_holds(self.scheduled)
        for action in self.scheduled:
            hold = holds[action.name]
            if hold.longest_hold_min > action.max_hold_hours * 60:
                start = hold.longest_hold_from.strftime("%a %H:%M") if hold.longest_hold_from else "?"
                raise ValueError(
                    f"autoscaling.scheduled '{action.name}' stays in force {_hours(hold.longest_hold_min)} (from "
                    f"{start} UTC), longer than its max_hold_hours ({action.max_hold_hours:g}): end it with another "
                    "action (e.g. run the business-hours action on weekends too) or raise max_hold_hours if meant"
                )
            if bounds[action.name] != base and hold.longest_silence_min > REASSERT_WITHIN_MIN:
                raise ValueError(
                    f"autoscaling.scheduled '{action.name}' ({action.min_capacity}..{action.max_capacity}) differs "
                    f"from min/max_capacity ({base[0]}..{base[1]}) and stays in force up to "
                    f"{_hours(hold.longest_silence_min)} without firing: a stack update in that time resets the "
                    f"bounds to {base[0]}..{base[1]} until it fires again; re-apply it at least hourly through its "
                    "window, e.g. cron(0 20-23,0-6 ? * * *)"
                )

    @property
    def invocations_target(self) -> float:
        """SageMakerVariantInvocationsPerInstance target (invocations per instance per minute)."""
        if self.invocations_per_instance_target is not None:
            return self.invocations_per_instance_target
        assert self.measured_max_rps_per_instance is not None
        return round(self.measured_max_rps_per_instance * self.safety_factor * 60, 1)


# What a blue/green deployment spends before its first bake wait, beyond the variant's own model download and
# container start-up health check timeouts: launching the new fleet's instances and pulling the image. Our allowance,
# not an AWS figure; SageMaker stops a deployment at MaximumExecutionTimeoutInSeconds whatever the phase.
PROVISIONING_ALLOWANCE_S = 600


class DeploymentSettings(_Strict):
    """Blue/green update policy of the endpoint."""

    strategy: Literal["all_at_once", "canary", "linear"] = "all_at_once"
    canary_percent: int = Field(10, ge=1, le=50)
    canary_instances: int | None = Field(
        None,
        ge=1,
        description="canary as an instance count (INSTANCE_COUNT); for small fleets, instead of percent",
    )
    linear_step_percent: int = Field(25, ge=10, le=50)
    wait_interval_s: int = Field(300, ge=0, le=3600)
    termination_wait_s: int = Field(300, ge=0, le=3600)
    max_execution_timeout_s: int = Field(3600, ge=600, le=14400)
    provisioning_allowance_s: int = Field(PROVISIONING_ALLOWANCE_S, ge=0, le=3600)
    rollback_on_alarms: bool = True


class AlarmSettings(_Strict):
    """Thresholds of the endpoint alarms (per stage)."""

    error_5xx_rate_percent: float = Field(1.0, gt=0, le=100)
    error_4xx_rate_percent: float = Field(10.0, gt=0, le=100)
    model_latency_p90_ms: float = Field(500, gt=0)
    model_latency_p99_ms: float = Field(1500, gt=0)
    overhead_latency_p99_ms: float = Field(200, gt=0)
    cpu_utilization_percent: float = Field(85, gt=0, description="per instance; SageMaker sums cores (x100)")
    memory_utilization_percent: float = Field(85, gt=0, le=100)
    disk_utilization_percent: float = Field(85, gt=0, le=100)
    gpu_utilization_percent: float = Field(90, gt=0)
    at_max_capacity_minutes: int = Field(30, ge=5)
    evaluation_periods: int = Field(3, ge=1)


class EndpointSettings(_Strict):
    """The real-time endpoint. With no model version it is not created (the stage says so at synth)."""

    model_package_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/.+$"
    )
    model_data_key: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9!_.*'()/-]+\.tar\.gz$",
        description="a model.tar.gz key in the artifacts bucket",
    )
    instance_type: InstanceType = "ml.c6i.xlarge"
    inference_ami_version: str | None = Field(
        None,
        description="GPU only: ProductionVariant.InferenceAmiVersion (driver/CUDA of the host); None = our default "
        "for the family (app/contracts/instance_types.py)",
    )
    initial_instance_count: int = Field(1, ge=1)
    precision: Precision = Field(
        "fp32",
        description="the graph the server runs (SERVING_PRECISION, set by infra): fp32 model.onnx or int8 "
        "model.int8.onnx; the release's model must ship it",
    )
    data_capture_percent: int = Field(0, ge=0, le=100)
    data_capture_percent_live: int | None = Field(
        None,
        ge=0,
        le=100,
        description="what the deployed endpoint captures (None: the same as data_capture_percent); a difference "
        "makes the next deploy apply data capture by not retaining variant properties",
    )
    startup_health_check_timeout_s: int = Field(600, ge=60, le=3600)
    model_download_timeout_s: int = Field(600, ge=60, le=3600)
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="serving settings a stage may tune, e.g. SERVING_WORKERS (app/contracts/serving_environment.py)",
    )
    autoscaling: AutoscalingSettings
    deployment: DeploymentSettings = DeploymentSettings()
    alarms: AlarmSettings = AlarmSettings()

    @model_validator(mode="after")
    def _one_model_source(self) -> EndpointSettings:
        if self.model_package_arn and self.model_data_key:
            raise ValueError("set at most one of model_package_arn and model_data_key")
        readable = (storage.MODELS_PREFIX, storage.TRAINING_OUTPUT_PREFIX)
        if self.model_data_key and not self.model_data_key.startswith(readable):
            raise ValueError(
                f"model_data_key '{self.model_data_key}' must start with one of {list(readable)}: the endpoint's "
                "role reads only those prefixes of the artifacts bucket"
            )
        if not self.autoscaling.min_capacity <= self.initial_instance_count <= self.autoscaling.max_capacity:
            raise ValueError(
                f"initial_instance_count ({self.initial_instance_count}) must lie within autoscaling min/max "
                f"({self.autoscaling.min_capacity}..{self.autoscaling.max_capacity})"
            )
        self._check_traffic_shifting()
        self._check_environment()
        self._check_gpu_host()
        self._check_precision()
        if self.autoscaling.scheduled:  # a deploy rule, not the simulator's: what-if schedules stay simulable
            self.autoscaling.check_schedule()
        return self

    def _check_environment(self) -> None:
        """Every SERVING_* name is a setting a stage may tune: the server ignores names it does not know, so a typo
        would otherwise deploy an endpoint without the setting. SERVING_DEVICE and SERVING_PRECISION have their own
        checks below."""
        for name in sorted(self.environment):
            if (
                not name.startswith(serving_env.PREFIX)
                or name in serving_env.TUNABLE | serving_env.SET_BY_INFRA
            ):
                continue
            if name in serving_env.FIXED:
                raise ValueError(
                    f"environment {name}: fixed by SageMaker's hosting contract (model in /opt/ml/model, bound to "
                    "0.0.0.0 on the port SageMaker names); remove it"
                )
            close = difflib.get_close_matches(name, serving_env.TUNABLE, n=1)
            raise ValueError(
                f"environment {name}: not a serving setting{f' (did you mean {close[0]}?)' if close else ''}; "
                f"a stage may set {', '.join(sorted(serving_env.TUNABLE))}"
            )

    def _check_gpu_host(self) -> None:
        """The serve image must start on the instance: its CUDA within the AMI's driver, and on GPU instances the
        server must insist on the GPU (SERVING_DEVICE=cuda, set by infra) instead of falling back to the CPU."""
        instance_types.check_serving(self.instance_type, self.ami_version, cuda.image_cuda("serve"))
        device = self.environment.get(serving_env.DEVICE)
        if instance_types.is_gpu(self.instance_type) and device not in (None, "cuda"):
            raise ValueError(
                f"environment SERVING_DEVICE={device} on GPU instance {self.instance_type}: GPU variants run with "
                "SERVING_DEVICE=cuda (set by infra) so the server fails its health check instead of silently "
                "serving on the CPU; remove it"
            )
        if not instance_types.is_gpu(self.instance_type) and device == "cuda":
            raise ValueError(
                f"environment SERVING_DEVICE=cuda on {self.instance_type}, which has no NVIDIA GPU"
            )

    def _check_precision(self) -> None:
        """The precision is a typed field, not a free-form variable; and the autoscaling target derived from a
        measurement is only right for the graph that was measured (int8 serves ~2.5x fp32 on a CPU)."""
        if serving_env.PRECISION in self.environment:
            raise ValueError(
                f"environment SERVING_PRECISION={self.environment[serving_env.PRECISION]}: set endpoint.precision "
                "instead (infra sets SERVING_PRECISION from it, and synth checks the release's model ships it); "
                "remove it"
            )
        family = instance_types.family(self.instance_type)
        if (
            self.precision == "int8"
            and instance_types.is_gpu(self.instance_type)
            and family not in instance_types.GPU_INT8_MEASURED
        ):
            raise ValueError(
                f"precision int8 on {self.instance_type}: int8 has not been measured on the {family} GPU (ONNX "
                "Runtime's CUDA provider does not run quantized models: app/contracts/instance_types.py, "
                "GPU_INT8_MEASURED); serve fp32 on GPU, or run `make gpu-check` on that GPU with int8 and add the "
                "family there with its figures"
            )
        scaling = self.autoscaling
        if scaling.measured_max_rps_per_instance is not None and scaling.measured_precision != self.precision:
            raise ValueError(
                f"autoscaling.measured_precision is {scaling.measured_precision} (measured_max_rps_per_instance "
                f"{scaling.measured_max_rps_per_instance:g} was measured at it) but precision is {self.precision}: "
                f"the scaling target would follow another graph's capacity; load-test the endpoint at "
                f"{self.precision} (python -m scripts.loadtest ... --precision {self.precision}) and record its "
                "max RPS and measured_precision"
            )

    @property
    def ami_version(self) -> str | None:
        """The InferenceAmiVersion the variant gets: the configured one, else our default for a GPU family."""
        return self.inference_ami_version or instance_types.default_inference_ami(self.instance_type)

    @property
    def serving_host(self) -> tuple[str, str | None]:
        """(instance family, InferenceAmiVersion): what the promotion-order parity check compares."""
        return instance_types.family(self.instance_type), self.ami_version

    def _check_traffic_shifting(self) -> None:
        """SageMaker rejects a canary or linear step above 50% of the variant's instances (at least one instance
        each), and stops a deployment that runs past its maximum execution timeout. Check against the smallest
        fleet the endpoint can have (autoscaling min), so the failure shows at synth, not mid-deployment.

        CapacitySize (CAPACITY_PERCENT or INSTANCE_COUNT) and the 50% limit: SageMaker API reference,
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CapacitySize.html and API_TrafficRoutingConfig
        (read 2026-11-30)."""
        deploy, fleet = self.deployment, self.autoscaling.min_capacity
        steps = 1
        if deploy.canary_instances is not None and deploy.strategy != "canary":
            raise ValueError(
                f"deployment.canary_instances applies to strategy canary, not {deploy.strategy}; remove it"
            )
        if deploy.strategy == "canary" and deploy.canary_instances is not None:
            if deploy.canary_instances * 2 > fleet:
                raise ValueError(
                    f"deployment.canary_instances {deploy.canary_instances} of {fleet} instance(s) (autoscaling "
                    f"min_capacity) is above SageMaker's 50% limit; raise min_capacity to at least "
                    f"{2 * deploy.canary_instances} or use a smaller canary"
                )
        elif deploy.strategy != "all_at_once":
            percent = deploy.canary_percent if deploy.strategy == "canary" else deploy.linear_step_percent
            exact = percent / 100 * fleet
            step_instances = math.ceil(exact)
            if step_instances * 2 > fleet:
                raise ValueError(
                    f"deployment.strategy {deploy.strategy}: a {percent}% step of {fleet} instance(s) (autoscaling "
                    f"min_capacity) is {step_instances} instance(s), above SageMaker's 50% limit; raise min_capacity "
                    f"to at least {2 * step_instances} or use all_at_once"
                )
            if deploy.strategy == "linear" and exact < 1:
                # LinearStepSize: "Value must be 10-50% of the variant's total instance count" (TrafficRoutingConfig,
                # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html, read
                # 2026-12-05): a step below one whole instance is no step SageMaker can take.
                raise ValueError(
                    f"deployment.linear_step_percent {percent}% of {fleet} instance(s) (autoscaling min_capacity) "
                    f"is {exact:g} instance: each linear step must be at least one instance; set "
                    f"linear_step_percent to at least {math.ceil(100 / fleet)} (<= 50) or raise min_capacity"
                )
            if deploy.strategy == "canary" and exact < 1:
                raise ValueError(
                    f"deployment.canary_percent {percent}% of {fleet} instance(s) (autoscaling min_capacity) is "
                    f"{exact:g} instance: the canary would rest on SageMaker rounding it up; set "
                    f"deployment.canary_instances: 1 (an INSTANCE_COUNT canary) instead"
                )
            steps = 1 if deploy.strategy == "canary" else math.ceil(100 / percent)
        # The new fleet is provisioned (instances, image, model download, health check) before the first bake wait.
        provisioning = (
            deploy.provisioning_allowance_s
            + self.model_download_timeout_s
            + self.startup_health_check_timeout_s
        )
        needed = provisioning + steps * deploy.wait_interval_s + deploy.termination_wait_s
        if needed > deploy.max_execution_timeout_s:
            raise ValueError(
                f"deployment: provisioning {provisioning} s (allowance {deploy.provisioning_allowance_s} s + model "
                f"download timeout {self.model_download_timeout_s} s + startup health check timeout "
                f"{self.startup_health_check_timeout_s} s) + {steps} wait interval(s) of {deploy.wait_interval_s} s "
                f"+ termination wait {deploy.termination_wait_s} s = {needed} s exceed max_execution_timeout_s "
                f"({deploy.max_execution_timeout_s})"
            )

    @property
    def data_capture_changes(self) -> bool:
        """This deploy changes what the live endpoint captures (RetainAllVariantProperties would keep the old)."""
        live = self.data_capture_percent_live
        return live is not None and live != self.data_capture_percent

    @property
    def has_model_version(self) -> bool:
        return bool(self.model_package_arn or self.model_data_key)


def _label_prefix(value: str) -> str:
    loc = storage.S3Uri.parse(value)  # raises S3UriError (a ValueError) naming what is wrong
    if not value.endswith("/"):
        raise ValueError(
            f"'{value}': expected a prefix ending in '/' (without it 'raw' would also match 'raw-old/')"
        )
    return str(loc)


class LabelSource(_Strict):
    """An S3 prefix data prep may read labels and images from (the Processing role gets s3:GetObject on it)."""

    uri: Annotated[str, AfterValidator(_label_prefix)] = Field(description="s3://bucket/prefix/")
    # Key ARN form: AWS KMS Developer Guide, "Key identifiers (KeyId)"
    # (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#key-id-key-ARN).
    kms_key_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$",
        description="the KMS key the objects are encrypted with (SSE-KMS); the role gets kms:Decrypt on it",
    )


class StageConfig(_Strict):
    """Everything that differs between dev, staging and prod."""

    name: str = Field(pattern=r"^[A-Z][A-Za-z0-9]{1,15}$", description="construct id of the stage, e.g. Dev")
    account: str | None = Field(None, pattern=r"^[0-9]{12}$", description="None = environment-agnostic")
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    retain_data: bool = Field(
        description="retain buckets/keys/repositories on delete + termination protection"
    )
    protect_stateless_stacks: bool = Field(
        False, description="termination protection on Training and Serving too (Data has it with retain_data)"
    )
    log_retention_days: int = 30
    noncurrent_version_expiry_days: int = Field(30, ge=1)
    abort_incomplete_upload_days: int = Field(7, ge=1)
    access_log_expiry_days: int = Field(365, ge=1)
    checkpoint_expiry_days: int = Field(30, ge=1, description="artifacts bucket checkpoints/ prefix")
    data_capture_expiry_days: int = Field(90, ge=1, description="artifacts bucket data-capture/ prefix")
    ecr_keep_images: int = Field(20, ge=1, le=1000)
    alarm_emails: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    images: ImageSettings = ImageSettings()
    training: TrainingSettings = TrainingSettings()
    # Where data prep may read labels and images, beyond the datasets bucket's raw/ (always readable).
    label_sources: tuple[LabelSource, ...] = ()
    endpoint: EndpointSettings

    @property
    def int8_caps(self) -> tuple[float, float]:
        """The loosest int8 gate (mAP50-95 drop, one class's drop) a model this stage serves may have passed."""
        return self.training.int8_map_drop_cap, self.training.int8_class_drop_cap

    @model_validator(mode="after")
    def _log_retention(self) -> StageConfig:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"log_retention_days ({self.log_retention_days}) must be one of {list(LOG_RETENTION_DAYS)}"
            )
        return self


def check_promotion_order(stages: dict[str, StageConfig]) -> None:
    """A stage before the last (Prod) runs what it runs: the last stage's precision (fp32/int8 graph), serving family
    and InferenceAmiVersion must have served in an earlier stage of the promotion order, or Prod is the first place
    that graph or host/image pair starts. Raise ConfigError naming what Prod serves and what each earlier stage does."""
    names = list(stages)
    if len(names) < 2:
        return
    # Every stage is checked, model version or not: a release (releases/) gives every stage the same model.
    last = stages[names[-1]]
    wanted = last.endpoint.serving_host
    earlier = {n: stages[n].endpoint.serving_host for n in names[:-1]}
    if wanted not in earlier.values():
        seen = (
            ", ".join(f"{n}: {fam}/{ami or 'no AMI'}" for n, (fam, ami) in earlier.items()) or "none serves"
        )
        raise ConfigError(
            f"promotion order {' -> '.join(names)}: {last.name} serves on family {wanted[0]} "
            f"({last.endpoint.instance_type}, InferenceAmiVersion {wanted[1] or 'none'}), which no earlier stage "
            f"serves on ({seen}); give a stage before {last.name} (e.g. {names[-2]}) an endpoint of the same family "
            "and AMI"
        )
    # The graph too: int8 and fp32 are different ONNX graphs (and, on a GPU, different kernels).
    precision = last.endpoint.precision
    same_host = {n: stages[n].endpoint.precision for n, host in earlier.items() if host == wanted}
    if precision not in same_host.values():
        have = ", ".join(f"{n}: {p}" for n, p in same_host.items())
        raise ConfigError(
            f"promotion order {' -> '.join(names)}: {last.name} field 'endpoint.precision' is {precision} on family "
            f"{wanted[0]}, which no earlier stage on that family and AMI serves ({have}); set endpoint.precision: "
            f"{precision} on one of them first"
        )


class PipelineConfig(_Strict):
    """The release pipeline (infra/stacks/pipeline.py): where it runs, what it builds from, and its gates' budgets."""

    account: str = Field(pattern=r"^[0-9]{12}$", description="the pipeline (tooling) account")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
    connection_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]{36}$",
        description="a CodeStar / CodeConnections connection to the source repository (created once, by hand)",
    )
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    branch: str = Field("main", pattern=r"^[A-Za-z0-9_./-]{1,255}$")
    smoke_requests: int = Field(
        50, ge=1, le=10_000, description="Dev: bounded load-test smoke after the deploy"
    )
    smoke_concurrency: int = Field(4, ge=1, le=64)
    verify_timeout_minutes: int = Field(90, ge=5, le=480, description="CodeBuild timeout of a verify step")
    manual_approval_before: tuple[str, ...] = Field(
        ("Prod",), description="stages whose deploy waits for a person to approve the release"
    )
    approval_emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = Field(
        (),
        description="told when a release waits for approval (SNS e-mail; others may subscribe to the topic)",
    )
    bake_load_stages: tuple[str, ...] = Field(
        ("Staging",), description="stages that get synthetic traffic while a canary/linear deployment bakes"
    )
    bake_load_parallel: int = Field(2, ge=1, le=16, description="concurrent invocations of the bake load")


def check_pipeline_stages(pipeline: PipelineConfig, stages: list[StageConfig]) -> None:
    """A pipeline deploys across environments: every stage needs an explicit account and region."""
    agnostic = [s.name for s in stages if not (s.account and s.region)]
    if agnostic:
        raise ConfigError(
            f"pipeline: stage(s) {', '.join(agnostic)}: field 'account'/'region': expected both set (a pipeline "
            "deploys each stage to an explicit environment; environment-agnostic stages cannot be deployed by it). "
            "Set account and region of every stage in infra/stages.py, or set PIPELINE = None"
        )
    if not stages:
        raise ConfigError("pipeline: expected at least one stage to deploy")
    for field in ("manual_approval_before", "bake_load_stages"):
        unknown = sorted(set(getattr(pipeline, field)) - {s.name for s in stages})
        if unknown:
            raise ConfigError(
                f"pipeline: field '{field}': {unknown} are not stages (have {[s.name for s in stages]})"
            )


def load_pipeline(values: dict[str, object]) -> PipelineConfig:
    """Validate the pipeline's values; raise ConfigError naming the field."""
    try:
        return PipelineConfig.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"pipeline: field '{'.'.join(str(p) for p in err['loc']) or '(pipeline)'}': {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError("; ".join(problems)) from None


def load_stage(name: str, values: dict[str, object]) -> StageConfig:
    """Validate one stage's values; raise ConfigError naming the stage and the field."""
    try:
        return StageConfig.model_validate({"name": name, **values})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(stage)"
            problems.append(f"stage {name}: field '{field}': {err['msg']}")
        raise ConfigError("; ".join(problems)) from None


def load_stages(stages: dict[str, dict[str, object]]) -> dict[str, StageConfig]:
    """Validate every stage of ``stages`` (infra/stages.py's STAGES) and their promotion order; raises ConfigError
    naming the stage and field. No CDK here: operator commands read stage configs without starting jsii."""
    configs = {name: load_stage(name, values) for name, values in stages.items()}
    check_promotion_order(configs)
    return configs
