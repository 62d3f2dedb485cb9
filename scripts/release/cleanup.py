"""``release cleanup``: the retained Models and EndpointConfigs of a stage that no release references."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from infra.release_record import Release, load_release
from infra.stack_outputs import ServingOutputs
from scripts.lib.aws import aws_session, stack_output, stage_config
from scripts.lib.cli import positive_int, stage_name


def cleanup_candidates(
    sagemaker: Any, *, endpoint_config_in_use: str, releases: Sequence[Release], keep: int, stage_tag: str
) -> tuple[list[str], list[str]]:
    """(endpoint configs, models) of the stage that no release references and that are not among the newest
    ``keep`` of their kind; the endpoint's running config and its model are never candidates."""
    referenced = {(uri, r.model.model_data_uri) for r in releases for uri in r.image_uris().values()}

    def tagged(arn: str) -> bool:
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn).get("Tags", [])}
        return tags.get("stage") == stage_tag

    def stage_resources(operation: str, listed: str, arn: str) -> list[dict[str, Any]]:
        """The stage's resources of one kind (tagged with its stage), newest first."""
        found: list[dict[str, Any]] = []
        pages = sagemaker.get_paginator(operation).paginate(SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            found.extend(item for item in page[listed] if tagged(item[arn]))
        return found

    in_use = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint_config_in_use)
    models_in_use = {v["ModelName"] for v in in_use["ProductionVariants"]}
    models = stage_resources("list_models", "Models", "ModelArn")
    stale_models = []
    for model in models[keep:]:
        if model["ModelName"] in models_in_use:
            continue
        container = sagemaker.describe_model(ModelName=model["ModelName"]).get("PrimaryContainer", {})
        if (container.get("Image"), container.get("ModelDataUrl")) not in referenced:
            stale_models.append(model["ModelName"])
    configs = stage_resources("list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn")
    stale_configs = []
    for config in configs[keep:]:
        name = config["EndpointConfigName"]
        if name == endpoint_config_in_use:
            continue
        variants = sagemaker.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
        if all(
            v["ModelName"] in stale_models or v["ModelName"] not in {m["ModelName"] for m in models}
            for v in variants
        ):
            stale_configs.append(name)
    return stale_configs, stale_models


def cmd_cleanup(args: argparse.Namespace) -> int:
    session = aws_session(profile=args.profile, region=args.region)
    cloudformation = session.client("cloudformation")
    endpoint = stack_output(cloudformation, f"{args.stage}-Serving", ServingOutputs.ENDPOINT_NAME)
    sagemaker = session.client("sagemaker")
    running = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    releases = [load_release(p) for p in sorted(args.releases_dir.glob("*.json"))]
    configs, models = cleanup_candidates(
        sagemaker,
        endpoint_config_in_use=running,
        releases=releases,
        keep=args.keep,
        stage_tag=stage_config(args.stage).tags.get("stage", args.stage.lower()),
    )
    verb = "deleting" if args.apply else "would delete"
    for name in configs:
        print(f"{verb} endpoint config {name}")
        if args.apply:
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
    for name in models:
        print(f"{verb} model {name}")
        if args.apply:
            sagemaker.delete_model(ModelName=name)
    if not (configs or models):
        print(
            f"{args.stage}: nothing to clean up (kept the newest {args.keep} and everything a release references)"
        )
    elif not args.apply:
        print("dry run: pass --apply to delete")
    return 0


def register(sub: Any) -> None:
    cleanup = sub.add_parser("cleanup", help="delete retained models/endpoint configs no release references")
    cleanup.add_argument("--stage", required=True, type=stage_name)
    cleanup.add_argument("--keep", type=positive_int, default=3, help="newest N of each kind always kept")
    cleanup.add_argument("--apply", action="store_true", help="delete (default: print what would go)")
    cleanup.set_defaults(func=cmd_cleanup)
