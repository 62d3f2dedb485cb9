"""``python -m scripts.transcripts [--only NAME ...] [--render | --check]``.

Without options: record every transcript (the demo ~5 min, then a load test of its model ~2 min; synth ~1 min; the
simulator seconds) and render every marked block. ``--only``: record just these, render all. ``--render``: record
nothing, render every block from the recordings. ``--check``: change nothing; exit 3 when a block, a cheap rerun or a
recorded line's format has drifted, naming file, line and the command that fixes it.

Exit status (scripts/lib/cli.py): 0 done or no drift, 1 a run failed, 2 usage, 3 drift found.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from infra.paths import REPO_ROOT
from scripts.lib import cli
from scripts.lib.cli import CheckFailed, OperatorError
from scripts.transcripts import blocks, formats
from scripts.transcripts.catalog import TRANSCRIPTS, Transcript
from scripts.transcripts.check import blocks_drift, recording_drift
from scripts.transcripts.recording import Recording, measured_on


def parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m scripts.transcripts", description=__doc__.split("\n\n")[1])
    parser.add_argument(
        "--only", action="append", choices=list(TRANSCRIPTS), help="record only this one (repeat)"
    )
    parser.add_argument(
        "--demo-args",
        default="",
        metavar="ARGS",
        help="extra arguments of the demo's recording, e.g. '--epochs 2' on a busy machine (the block shows them)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--render", action="store_true", help="record nothing; render the blocks from the recordings"
    )
    mode.add_argument("--check", action="store_true", help="change nothing; exit 3 on drift")
    return parser


def record(transcript: Transcript, args: list[str]) -> Path:
    command = " ".join([transcript.command, *args])
    print(f"== {transcript.name}: {command}", flush=True)
    when = measured_on()
    with tempfile.TemporaryDirectory(prefix=f"transcript-{transcript.name}-") as scratch:
        output = transcript.record(Path(scratch), args)
    explained = [formats.explain(line, transcript.modules) for line in output]
    recording = Recording(
        name=transcript.name,
        command=command,
        output=output,
        formats=[p.shown() if p else None for p in explained],
        measured_on=when,
    )
    path = recording.save()
    unexplained = sum(1 for line, p in zip(output, explained, strict=True) if line.strip() and p is None)
    print(
        f"   recorded {len(output)} lines in {path.relative_to(REPO_ROOT)} ({unexplained} without a format)"
    )
    return path


def render() -> None:
    for path in blocks.MANUAL:
        for block in blocks.blocks(path):
            if block.name not in TRANSCRIPTS:
                where = f"{path.relative_to(REPO_ROOT)}:{block.line}"
                raise OperatorError(
                    f"{where}: no transcript {block.name!r}; expected one of {list(TRANSCRIPTS)}"
                )
        if blocks.rewrite(path, lambda name: TRANSCRIPTS[name].render(Recording.load(name))):
            print(f"rendered {path.relative_to(REPO_ROOT)}")


@cli.command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = [TRANSCRIPTS[name] for name in args.only] if args.only else list(TRANSCRIPTS.values())
    if args.check:
        problems = blocks_drift()
        for transcript in chosen:
            problems += recording_drift(transcript)
        for problem in problems:
            print(problem)
        if problems:
            raise CheckFailed(f"{len(problems)} transcript problem(s) (listed above)")
        print(f"no drift: {len(chosen)} transcript(s), every block of README.md and docs/")
        return cli.EXIT_OK
    demo_args = shlex.split(args.demo_args)
    if not args.render:
        for transcript in chosen:
            record(transcript, demo_args if transcript.takes_args else [])
    render()
    return cli.EXIT_OK
