"""Every ``python -m scripts.X`` / ``python -m app.X`` (or ``python scripts/x.py``) command line the README and the
pages of docs/ show parses with the real argument
parser, so a renamed or removed flag breaks the build instead of the reader. Code blocks (``$`` prompts, ``\\``
continuations and trailing ``# comments`` handled) and inline code spans are both read. A placeholder (``<job name>``,
``DIR``, ``N``, ``...``) stands for one value of any type; inside a value (``s3://<bucket>/tools/``) it keeps the
rest checked. Path arguments are not checked for existence (the README's ``photo.jpg`` is the reader's); every other
argument type is (numbers, stages, S3 URIs, URLs). Runtime < 1 s.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable

import pytest

from infra.paths import REPO_ROOT
from scripts.lib import cli

MANUAL = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PLACEHOLDER = "PLACEHOLDER"
COMMAND = re.compile(
    r"(?:^|[\s$`(])(?:\S*/)?python3?\s+(?:-m\s+((?:scripts|app)\.[a-z_]+)|scripts/([a-z_]+)(?:\.py|/)?)(?=\s|$|`)(.*)$"
)


def _path_types() -> set[Callable[[str], object]]:
    from scripts import simulate_autoscaling

    return {
        cli.existing_file,
        cli.output_file,
        cli.directory_or_new,
        cli.existing_dir,
        simulate_autoscaling._png,
    }


def _parse_functions() -> dict[str, Callable[[list[str]], object]]:
    from app.dataprep.cli import build_parser as dataprep_parser
    from app.serving.__main__ import parse_args as serving_args
    from app.training.__main__ import parse_args as training_args
    from scripts import (
        dataprep_job,
        demo,
        gpu_check,
        loadtest,
        lock,
        promote_image,
        simulate_autoscaling,
        synth,
        training,
        verify_endpoint,
    )
    from scripts.release.__main__ import build_parser as release_parser
    from scripts.transcripts import command as transcripts

    return {
        "app.dataprep": lambda argv: dataprep_parser().parse_args(argv),
        "app.training": training_args,
        "app.serving": serving_args,
        "scripts.training": lambda argv: training.parser().parse_args(argv),
        "scripts.dataprep_job": lambda argv: dataprep_job.parser().parse_args(argv),
        "scripts.verify_endpoint": lambda argv: verify_endpoint.parser().parse_args(argv),
        "scripts.promote_image": lambda argv: promote_image.parser().parse_args(argv),
        "scripts.loadtest": lambda argv: loadtest.build_parser().parse_args(argv),
        "scripts.simulate_autoscaling": simulate_autoscaling.parse_args,
        "scripts.synth": lambda argv: synth.parser().parse_args(argv),
        "scripts.demo": demo.parse_args,
        "scripts.release": lambda argv: release_parser().parse_args(argv),
        "scripts.gpu_check": lambda argv: gpu_check.parser().parse_args(argv),
        "scripts.lock": lambda argv: lock.parser().parse_args(argv),
        "scripts.transcripts": lambda argv: transcripts.parser().parse_args(argv),
    }


def _module(match: re.Match[str]) -> str:
    return match[1] or f"scripts.{match[2]}"  # the path form runs the same command


def readme_commands(text: str) -> list[tuple[int, str, str]]:
    """(line, module, argument string) of every command line in code blocks and inline code spans."""
    found: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    in_block = False
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if line.lstrip().startswith("```"):
            in_block = not in_block
            i += 1
            continue
        if in_block:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            match = COMMAND.search(line)
            if match:
                found.append((number, _module(match), match[3]))
        else:
            for span in re.findall(r"`([^`]+)`", line):
                match = COMMAND.search(span)
                if match:
                    found.append((number, _module(match), match[3]))
        i += 1
    return found


def _argv(arguments: str) -> list[str]:
    arguments = re.sub(r"\s+#\s.*$", "", arguments)  # a trailing comment
    # inside a value (s3://<datasets bucket>/x) a placeholder becomes a name valid there (S3 bucket names are lowercase)
    arguments = re.sub(r"(?<=\S)<[^<>]*>|<[^<>]*>(?=\S)", PLACEHOLDER.lower(), arguments)
    arguments = re.sub(r"<[^<>]*>", PLACEHOLDER, arguments)  # <job name> is one value
    return [
        PLACEHOLDER if re.fullmatch(r"[A-Z][A-Z_]*|\.\.\.", token) else token
        for token in shlex.split(arguments)
    ]


COMMANDS = [
    (f"{page.relative_to(REPO_ROOT)}:{number}", module, arguments)
    for page in MANUAL
    for number, module, arguments in readme_commands(page.read_text())
]


def test_the_readme_shows_the_operator_commands() -> None:
    modules = {module for _, module, _ in COMMANDS}
    assert {"scripts.training", "scripts.loadtest", "scripts.simulate_autoscaling", "app.dataprep"} <= modules


@pytest.mark.parametrize(("place", "module", "arguments"), COMMANDS, ids=[place for place, _, _ in COMMANDS])
def test_readme_command_line_parses(
    place: str,
    module: str,
    arguments: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parsers = _parse_functions()
    assert module in parsers, f"{place}: {module} is not a command this test knows; add its parser"
    path_types = _path_types()
    original = argparse.ArgumentParser.parse_known_args

    def typed_unless_placeholder(check: Callable[[str], object]) -> Callable[[str], object]:
        return lambda value: value if value == PLACEHOLDER else check(value)

    def without_path_checks(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> object:
        for action in self._actions:
            if action.type in path_types:
                action.type = None
            elif callable(action.type) and not getattr(action.type, "placeholder_ok", False):
                action.type = typed_unless_placeholder(action.type)
                action.type.placeholder_ok = True  # type: ignore[attr-defined]
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", without_path_checks)
    argv = _argv(arguments)
    try:
        parsers[module](argv)
    except SystemExit as exc:
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.code == 0, f"{place}: python -m {module} {' '.join(argv)}: {err[-1] if err else exc}"


def test_a_renamed_flag_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself can fail: the README's old `follow --job` form does not parse."""
    from scripts import training

    with pytest.raises(SystemExit):
        training.parser().parse_args(_argv("follow --stage Dev --job <job name>"))
    assert MANUAL[0].is_file()
