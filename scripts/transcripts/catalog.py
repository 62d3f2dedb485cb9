"""Every transcript the manual shows: the command a reader types, how this script runs it for real, how its block is
rendered, and how the drift test checks it.

Cheap ones (synth's summary, the autoscaling simulator) are run again by the check and compared line by line.
Expensive ones (the demo, a load test against the demo's model) are recorded once; the check ties each recorded line to
the format string that printed it (scripts/transcripts/formats.py) and replays what it can (the metric lines through
the metrics contract, the demo's synth step against synth's own transcript).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.contracts import metrics
from infra.paths import REPO_ROOT
from scripts.lib.cli import OperatorError, last_lines
from scripts.transcripts.recording import Recording, normalise

# Where the format strings of our own output live (packages: a module split or moved stays covered). infra prints
# nothing a transcript shows (its errors are ConfigError lines, not transcripts).
OURS = ("app", "scripts")
REGENERATE = "python -m scripts.transcripts"


def _python(args: list[str], *, what: str, timeout: float) -> str:
    """Run ``python <args>`` from the checkout; stdout and stderr as one stream, in the order printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise OperatorError(
            f"{what} exited with {proc.returncode}; its last lines:\n{last_lines(proc.stdout, 12)}"
        )
    return proc.stdout


@dataclass(frozen=True)
class Transcript:
    name: str
    command: str  # what the reader types (shown in the block)
    record: Callable[
        [Path, list[str]], list[str]
    ]  # run it for real (scratch folder, extra args); normalised lines
    intro: str  # the sentence above the block ({command}, {measured}, {regenerate} filled in)
    expensive: bool = False  # recorded once; never run by the check
    rerun: Callable[[Path, list[str]], list[str]] | None = (
        None  # the check's run (cheap ones): lines to compare
    )
    compared: Callable[[list[str]], list[str]] = lambda lines: lines  # the recorded lines a rerun must equal
    trim: Callable[[list[str]], list[str]] = lambda lines: lines  # recorded output -> the lines shown
    replay: Callable[[list[str]], list[str]] = lambda lines: []  # expensive ones: what the check re-derives
    modules: tuple[str, ...] = OURS
    takes_args: bool = False  # the recording may add arguments to the command (shown in the block)

    def render(self, recording: Recording) -> str:
        intro = self.intro.format(
            command=f"`{recording.command}`",
            measured=recording.measured_on or "",
            regenerate=f"`{REGENERATE} --only {self.name}`",
        )
        body = "\n".join(self.trim(recording.output)).strip("\n")
        return f"{textwrap.fill(intro, width=118)}\n\n```text\n{body}\n```"


# --- synth: the summary of a fresh clone (no release yet) --------------------------------------------------------

# A fresh clone's releases/ (no CURRENT), whatever the operator's checkout holds: the transcript is what a reader
# sees first, and the check must not depend on the operator's releases (docs/architecture.md, "Tests ... use fixture
# records, never the operator's releases/CURRENT").
_FRESH_CLONE = """
import sys, tempfile
from pathlib import Path
from infra import paths
paths.RELEASES_DIR = Path(tempfile.mkdtemp())
from scripts import synth
if sys.argv[1] == 'summary':
    synth.print_summary(synth.synthesize(Path(sys.argv[2])))
else:
    sys.exit(synth.main(['--outdir', sys.argv[2]]))
"""


def _synth(mode: str) -> Callable[[Path, list[str]], list[str]]:
    def run(scratch: Path, args: list[str]) -> list[str]:
        outdir = scratch / "cdk.out"
        text = _python(["-c", _FRESH_CLONE, mode, str(outdir)], what="scripts.synth", timeout=600)
        return normalise(text, extra={str(outdir): "cdk.out"})

    return run


def synth_summary(lines: list[str]) -> list[str]:
    """The stage and stack lines (what depends on the code, not on the machine): up to the cdk-nag/cfn-lint line."""
    return [line for line in lines if not line.startswith("cdk-nag:")]


SYNTH = Transcript(
    name="synth",
    command="python -m scripts.synth",
    record=_synth("main"),
    rerun=_synth("summary"),
    compared=synth_summary,
    intro="Output of {command} in a fresh clone (no release yet, so no stage has an endpoint), measured on "
    "{measured}; the drift test synthesizes again and compares every stage and stack line "
    "(regenerate: {regenerate}):",
)


# --- the autoscaling simulator ----------------------------------------------------------------------------------

_SPIKE_PLOT = "docs/img/autoscaling-prod-spike.png"
_SPIKE = ["-m", "scripts.simulate_autoscaling", "--stage", "Prod", "--profile", "spike", "--plot"]


def _spike(plot: Callable[[Path], Path]) -> Callable[[Path, list[str]], list[str]]:
    def run(scratch: Path, args: list[str]) -> list[str]:
        target = plot(scratch)
        text = _python([*_SPIKE, str(target)], what="scripts.simulate_autoscaling", timeout=120)
        return normalise(text, extra={str(target): _SPIKE_PLOT})

    return run


SIMULATE_PROD_SPIKE = Transcript(
    name="simulate-prod-spike",
    command=f"python {' '.join(_SPIKE)} {_SPIKE_PLOT}",
    record=_spike(lambda scratch: REPO_ROOT / _SPIKE_PLOT),  # the recording redraws the plot the page shows
    rerun=_spike(lambda scratch: scratch / "plot.png"),
    intro="Output of {command} (deterministic: the drift test runs it again and compares; regenerate: {regenerate}):",
)

_STEP = ["-m", "scripts.simulate_autoscaling", "--stage", "Dev", "--profile", "step", "--peak-rps", "30"]


def _step(scratch: Path, args: list[str]) -> list[str]:
    return normalise(_python(_STEP, what="scripts.simulate_autoscaling", timeout=120))


def from_scaling_activities(lines: list[str]) -> list[str]:
    start = next((i for i, line in enumerate(lines) if line.startswith("scaling activities:")), 0)
    return ["...", *lines[start:]] if start else lines


SIMULATE_DEV_STEP = Transcript(
    name="simulate-dev-step",
    command=f"python {' '.join(_STEP)}",
    record=_step,
    rerun=_step,
    trim=from_scaling_activities,
    intro="Output of {command} from its scaling activities on (checked like the one above; regenerate: {regenerate}):",
)


# --- verify_endpoint against moto (the endpoint of its own test): a match, then a silent rollback -------------------


def _printed(run: Callable[[], None]) -> str:
    """What ``run`` prints (in this process: the moto scenarios are cheap, and their modules are already loaded
    in a test session)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run()
    return out.getvalue()


def _verify_reports() -> None:
    from tests.scripts.test_verify_endpoint import deploy_stack, moto_endpoint, run

    for asked in ("cfg-new", "cfg-newer"):
        with moto_endpoint() as aws:
            deploy_stack(aws["cloudformation"], expected_config=asked)
            report = run(aws)
        print(report.render())
        print("OK" if report.ok else "FAILED")
        print()


def _verify(scratch: Path, args: list[str]) -> list[str]:
    return normalise(_printed(_verify_reports))


VERIFY_MOTO = Transcript(
    name="verify-moto",
    command="python -m scripts.verify_endpoint --stage Prod",
    record=_verify,
    rerun=_verify,
    intro="What {command} prints, run by its test against moto (tests/scripts/test_verify_endpoint.py: the stack "
    "asks for the config the endpoint runs, then for one it does not run); the drift test runs it again (regenerate: "
    "{regenerate}):",
)


# --- release verify against moto + Stubber (the passing endpoint of its own test) -----------------------------------


def _release_verify_report() -> None:
    import boto3
    from moto import mock_aws

    from tests.scripts.test_release_gates import REGION, endpoint_stubs, run_verify, runtime, stack

    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        stack(cloudformation)
        report = run_verify(cloudformation, endpoint_stubs(), runtime(answers=1 + 1 + 5), load_requests=5)
    print(report.render())


# The load smoke's latencies and rate are this machine's, not the code's.
_LOAD_SMOKE_FIGURES = re.compile(r"p50 [\d.]+ ms, p99 [\d.]+ ms, [\d.]+ rps")


def _release_verify(scratch: Path, args: list[str]) -> list[str]:
    lines = normalise(_printed(_release_verify_report))
    return [_LOAD_SMOKE_FIGURES.sub("p50 <ms> ms, p99 <ms> ms, <n> rps", line) for line in lines]


RELEASE_VERIFY = Transcript(
    name="release-verify",
    command="python -m scripts.release verify --stage Staging",
    record=_release_verify,
    rerun=_release_verify,
    intro="The report of {command}, run by its test against moto and botocore's Stubber "
    "(tests/scripts/test_release_gates.py, the example release on Staging; the load smoke's figures are placeholders: "
    "they are the machine's); the drift test runs it again (regenerate: {regenerate}):",
)


# --- the demo (recorded: ~5 min) ---------------------------------------------------------------------------------


def _demo(scratch: Path, args: list[str]) -> list[str]:
    # The default --workdir (demo-output/, the folder docs/demo.md names), as a reader runs it.
    return normalise(_python(["-m", "scripts.demo", *args], what="scripts.demo", timeout=3600))


def trim_epochs(lines: list[str]) -> list[str]:
    """The first two and last two epoch lines of the training step; the rest is one '...' line."""
    epochs = [i for i, line in enumerate(lines) if metrics.is_epoch_line(line.strip())]
    if len(epochs) <= 4:
        return lines
    indent = lines[epochs[0]][: len(lines[epochs[0]]) - len(lines[epochs[0]].lstrip())]
    return [*lines[: epochs[2]], f"{indent}... (one line per epoch)", *lines[epochs[-2] :]]


DEMO = Transcript(
    name="demo",
    command="python -m scripts.demo",
    record=_demo,
    expensive=True,
    takes_args=True,
    trim=trim_epochs,
    modules=(*OURS, "ultralytics.nn.tasks"),  # ultralytics' "Transferred N/M items from pretrained weights"
    replay=lambda lines: metric_lines_drift(lines) + synth_step_drift(lines, Recording.load("synth").output),
    intro="Output of {command} (`make demo` runs `python -m scripts.demo`), measured on {measured}; epoch lines "
    "trimmed. Losses, "
    "metrics and timings change with the code and the machine; the drift test checks every line against the format "
    "string that printed it and the synth step against synth's transcript (regenerate, ~5 min: {regenerate}):",
)


# --- a load test of the demo's model (recorded: ~2 min, needs the demo's model) -------------------------------------

LOADTEST_FLAGS = (
    "--concurrency 1,2,4,8 --requests 150 --seconds 20 --p99-ms 500 --peak-rps 40 --min-capacity 2"
)
DEMO_MODEL = REPO_ROOT / "demo-output" / "opt_ml" / "model"


def _loadtest(scratch: Path, args: list[str]) -> list[str]:
    from scripts.lib.local_server import serving  # the serving entrypoint as a local process

    if not (DEMO_MODEL / "model.onnx").is_file():
        raise OperatorError(
            f"{DEMO_MODEL.relative_to(REPO_ROOT)}: no demo model to load-test; record the demo first "
            f"({REGENERATE} --only demo)"
        )
    with serving(DEMO_MODEL) as url:
        args = ["-m", "scripts.loadtest", "--url", url, *LOADTEST_FLAGS.split()]
        text = _python(args, what="scripts.loadtest", timeout=600)
    return [f"$ python {' '.join(args)}", *normalise(text)]


LOADTEST = Transcript(
    name="loadtest",
    command=f"python -m scripts.loadtest --url http://127.0.0.1:<port> {LOADTEST_FLAGS}",
    record=_loadtest,
    expensive=True,
    intro="The demo's model (`demo-output/opt_ml/model`, imgsz 320) served on 127.0.0.1 by the demo's own server "
    "start, stepping concurrency; measured on {measured}; the drift test checks every line against the format string "
    "that printed it (regenerate, after the demo: {regenerate}):",
)

TRANSCRIPTS = {
    t.name: t
    for t in (SYNTH, SIMULATE_PROD_SPIKE, SIMULATE_DEV_STEP, VERIFY_MOTO, RELEASE_VERIFY, DEMO, LOADTEST)
}


# --- replays of what the expensive ones printed ------------------------------------------------------------------


def metric_lines_drift(lines: list[str]) -> list[str]:
    """Each recorded metric line, parsed and printed again by today's metrics contract, must come out the same
    (a metric added, renamed or reordered, or another number format, fails it)."""
    problems = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        try:
            if metrics.is_epoch_line(line):
                progress, _, body = line.removeprefix(f"{metrics.PREFIX} epoch=").partition(" ")
                epoch, _, epochs = progress.partition("/")
                again = metrics.format_epoch_line(int(epoch), int(epochs), _values(body))
            elif metrics.is_final_line(line):
                again = metrics.format_final_line(
                    _values(line.removeprefix(f"{metrics.PREFIX} {metrics.FINAL} "))
                )
            elif metrics.is_int8_line(line):
                again = metrics.format_int8_line(
                    _values(line.removeprefix(f"{metrics.PREFIX} {metrics.INT8} "))
                )
            else:
                continue
        except (KeyError, ValueError) as exc:
            again = f"<{exc}>"
        if again != line:
            problems.append(f"line {number} {line!r}: today's metrics contract prints {again!r}")
    return problems


def _values(body: str) -> dict[str, float]:
    return {key: float(value) for key, _, value in (pair.partition("=") for pair in body.split())}


def synth_step_drift(demo: list[str], synth: list[str]) -> list[str]:
    """The demo's synth step prints what synth prints: its stage and stack lines must equal synth's transcript."""
    command = "  $ .venv/bin/python -m scripts.synth"
    if command not in demo:
        return [f"the demo's recording has no {command.strip()!r} step"]
    step = []
    for line in demo[demo.index(command) + 1 :]:
        if not line.startswith("    "):
            break
        step.append(line.removeprefix("    "))
    if synth_summary(step) != synth_summary(synth):
        return ["the demo's synth step differs from synth's transcript (stacks or resource counts changed)"]
    return []
