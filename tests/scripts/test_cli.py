"""scripts/lib/cli.py: the one way operator commands fail (error line + exit code), stack_outputs' named causes
(botocore Stubber: stack states moto cannot produce) and the argparse validators. Runtime < 1 s."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError, ProfileNotFound
from botocore.stub import Stubber

from app.dataprep.errors import DataprepError
from scripts.lib import aws, cli

REGION = "us-east-1"


def _raising(exc: BaseException) -> Callable[[], int]:
    @cli.command
    def main() -> int:
        raise exc

    return main


def _client_error(code: str, message: str, operation: str = "DescribeStacks") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (
            cli.OperatorError("stack Dev-Training has no outputs yet"),
            1,
            "stack Dev-Training has no outputs yet",
        ),
        (cli.CheckFailed("training job j failed: OOM"), 3, "training job j failed: OOM"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (NoCredentialsError(), 1, "no AWS credentials found"),
        (ProfileNotFound(profile="prod-typo"), 1, "The config profile (prod-typo) could not be found"),
        (_client_error("AccessDenied", "not allowed"), 1, "lack this permission"),
        (_client_error("ThrottlingException", "Rate exceeded"), 1, "wait a minute and retry"),
        (_client_error("ResourceNotFoundException", "no such thing"), 1, "it does not exist"),
        (_client_error("ExpiredToken", "expired"), 1, "log in again"),
        (DataprepError("manifest.jsonl: line 3: bad box"), 1, "manifest.jsonl: line 3: bad box"),
        (FileNotFoundError(2, "No such file or directory", "x.csv"), 1, "x.csv: No such file or directory"),
    ],
)
def test_errors_become_one_line_and_a_documented_exit_code(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _raising(exc)() == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert line in err


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(KeyError):
        _raising(KeyError("bug"))()
    with pytest.raises(ValueError):  # a ValueError outside app/infra/scripts is not a domain error
        _raising(ValueError("bug"))()


def test_unknown_profile_is_refused_when_the_session_is_made() -> None:
    with pytest.raises(cli.OperatorError, match=r"profile \(nope\).*--profile"):
        aws.aws_session(profile="nope")


def _stack(status: str, outputs: dict[str, str] | None = None) -> dict[str, Any]:
    stack: dict[str, Any] = {
        "StackName": "Dev-Training",
        "StackStatus": status,
        "CreationTime": "2026-11-30T00:00:00Z",
    }
    if outputs:
        stack["Outputs"] = [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]
    return {"Stacks": [stack]}


@pytest.mark.parametrize(
    ("status", "outputs", "message"),
    [
        ("CREATE_COMPLETE", {}, "has no outputs yet; deploy the current version of the stage first"),
        ("UPDATE_COMPLETE", {"Other": "x"}, "has no output RunnerFunctionName; deploy the current version"),
        ("CREATE_IN_PROGRESS", {}, "it is still deploying (CREATE_IN_PROGRESS)"),
        ("REVIEW_IN_PROGRESS", {}, "it was never deployed"),
        ("ROLLBACK_COMPLETE", {}, "its first deploy failed and was rolled back (ROLLBACK_COMPLETE)"),
        (
            "UPDATE_ROLLBACK_FAILED",
            {"RunnerFunctionName": "f"},
            "its last deploy failed (UPDATE_ROLLBACK_FAILED)",
        ),
        (
            "UPDATE_ROLLBACK_COMPLETE",
            {},
            "its last deploy failed and was rolled back (UPDATE_ROLLBACK_COMPLETE)",
        ),
        ("DELETE_IN_PROGRESS", {"RunnerFunctionName": "f"}, "is being deleted"),
    ],
)
def test_stack_outputs_names_why_an_output_is_missing(
    status: str, outputs: dict[str, str], message: str
) -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response("describe_stacks", _stack(status, outputs), {"StackName": "Dev-Training"})
        with pytest.raises(cli.OperatorError) as info:
            aws.stack_outputs(client, "Dev-Training", required=["RunnerFunctionName"])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_stack_outputs_of_a_rolled_back_update_that_still_has_them_are_usable() -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_stacks", _stack("UPDATE_ROLLBACK_COMPLETE", {"RunnerFunctionName": "f"})
        )
        assert aws.stack_outputs(client, "Dev-Training", required=["RunnerFunctionName"]) == {
            "RunnerFunctionName": "f"
        }


def test_a_stack_that_does_not_exist_says_how_to_deploy_it() -> None:
    client = boto3.client("cloudformation", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id Dev-Training does not exist", 400
        )
        with pytest.raises(cli.OperatorError, match=r"does not exist .*npx cdk deploy 'Dev/Training'"):
            aws.stack_outputs(client, "Dev-Training")


@pytest.mark.parametrize(
    ("validator", "text", "message"),
    [
        (cli.positive_int, "0", "expected an integer > 0"),
        (cli.positive_int, "2.5", "is not an integer"),
        (cli.non_negative_int, "-1", "expected an integer >= 0"),
        (cli.positive_float, "-5", "expected a number > 0"),
        (cli.positive_float, "nan", "not a finite number"),
        (cli.non_negative_float, "-12.72", "expected a number >= 0"),
        (cli.fraction, "1.5", "expected a number in (0, 1]"),
        (cli.stage_name, "Dve", "unknown stage 'Dve'; expected one of Dev, Staging, Prod"),
        (cli.s3_uri, "s3://bucket-only", "no key; expected s3://bucket-only/<key>"),
        (cli.s3_uri, "bucket/key", "expected s3://<bucket>/<key>"),
        (cli.s3_uri, "s3:/bucket/key", "expected s3://<bucket>/<key> (two slashes, lowercase)"),
        (cli.s3_uri, "s3://My_Bucket/key", "bucket 'My_Bucket': expected 3-63 lowercase letters"),
        (cli.http_url, "127.0.0.1:8080", "expected http://HOST:PORT"),
        (cli.http_url, "http://127.0.0.1:99999", "is not a URL"),
        (cli.output_file, "/nonexistent-folder/x.json", "folder /nonexistent-folder does not exist"),
        (cli.existing_file, "/nonexistent-folder/x.jpg", "no such file"),
        (cli.existing_dir, "/nonexistent-folder", "/nonexistent-folder: no such directory"),
    ],
)
def test_validators_refuse_bad_values_at_parse_time(
    validator: Callable[[str], Any], text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        validator(text)
    assert message in str(info.value)


def test_validators_accept_good_values(tmp_path: Path) -> None:
    assert cli.stage_name("prod") == "Prod"
    assert cli.fraction("1") == 1.0
    assert cli.s3_uri("s3://bkt/k/") == "s3://bkt/k/"
    assert cli.http_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert cli.output_file(str(tmp_path / "out.json")) == tmp_path / "out.json"
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        cli.output_file(str(tmp_path))
    (tmp_path / "f").write_text("x")
    with pytest.raises(argparse.ArgumentTypeError, match="not a directory"):
        cli.directory_or_new(str(tmp_path / "f"))


def test_usage_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.ArgumentParser(prog="python -m scripts.x")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("follow").add_argument("--interval", type=cli.positive_float)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["follow", "--interval", "-5"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "error: python -m scripts.x follow: argument --interval: expected a number > 0, got -5 "
        "(see python -m scripts.x follow --help)\n"
    )
