"""The drift check: the manual's blocks are what the recordings render to, the cheap transcripts still come out the
same when run again, and every recorded line still has the format string that printed it (plus the replays)."""

from __future__ import annotations

import difflib
import tempfile
from pathlib import Path

from infra.paths import REPO_ROOT
from scripts.transcripts import blocks, formats
from scripts.transcripts.catalog import REGENERATE, TRANSCRIPTS, Transcript
from scripts.transcripts.recording import RECORDINGS, Recording


def blocks_drift() -> list[str]:
    """(a) Every marked block equals what its recording renders to; every transcript has a block."""
    problems, shown = [], set()
    for path in blocks.MANUAL:
        for block in blocks.blocks(path):
            where = f"{path.relative_to(REPO_ROOT)}:{block.line}"
            transcript = TRANSCRIPTS.get(block.name)
            if transcript is None:
                problems.append(f"{where}: no transcript {block.name!r} (known: {', '.join(TRANSCRIPTS)})")
                continue
            shown.add(block.name)
            if block.content != transcript.render(Recording.load(block.name)):
                problems.append(
                    f"{where}: block {block.name!r} is not what docs/transcripts/{block.name}.json renders to "
                    f"(edit the recording's source, not the block; re-render: {REGENERATE} --render)"
                )
    problems += [f"transcript {name!r}: no block shows it" for name in TRANSCRIPTS if name not in shown]
    return problems


def recording_drift(transcript: Transcript) -> list[str]:
    """(b) a cheap transcript run again equals its recording; (c) every recorded line's format is still printed."""
    recording = Recording.load(transcript.name)
    fix = f"re-record: {REGENERATE} --only {transcript.name}"
    problems = []
    if not (recording.command + " ").startswith(transcript.command + " ") or (
        recording.command != transcript.command and not transcript.takes_args
    ):
        problems.append(f"recorded {recording.command!r}, the catalog runs {transcript.command!r}")
    problems += formats.drifted(recording.output, recording.formats, transcript.modules)
    problems += transcript.replay(recording.output)
    if transcript.rerun is not None:
        with tempfile.TemporaryDirectory(prefix=f"transcript-{transcript.name}-") as scratch:
            now = transcript.compared(transcript.rerun(Path(scratch), []))
        recorded = transcript.compared(recording.output)
        if now != recorded:
            diff = difflib.unified_diff(recorded, now, "recorded", "now", lineterm="", n=1)
            problems.append("run again, it prints otherwise:\n" + "\n".join(f"    {line}" for line in diff))
    path = (RECORDINGS / f"{transcript.name}.json").relative_to(REPO_ROOT)
    return [f"{path}: {p}" for p in problems] + ([f"{path}: {fix}"] if problems else [])
