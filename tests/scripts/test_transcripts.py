"""The manual's transcripts have not drifted from the code (scripts/transcripts): every marked block is what its
recording renders to, the cheap transcripts print the same when run again, and every recorded line of the expensive
ones still has the format string that printed it. The fix is always one command, named in the failure."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from app.contracts import metrics
from scripts.transcripts import blocks, formats
from scripts.transcripts.catalog import TRANSCRIPTS, metric_lines_drift
from scripts.transcripts.check import blocks_drift, recording_drift


def test_every_marked_block_is_what_its_recording_renders_to() -> None:
    assert blocks_drift() == []


@pytest.mark.parametrize("name", list(TRANSCRIPTS))
def test_transcript_still_matches_the_code(name: str) -> None:
    assert recording_drift(TRANSCRIPTS[name]) == []


# --- the checks fail when they should ------------------------------------------------------------------------------


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> tuple[str, ...]:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return (name,)


def test_a_reworded_print_fails_the_recorded_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = _module(tmp_path, monkeypatch, "printer_v1", 'print(f"  held-out recall: {m}/{n} = {r:.2f}")\n')
    line = "  held-out recall: 10/10 = 1.00"
    recorded = formats.explain(line, modules)
    assert recorded is not None
    assert formats.drifted([line], [recorded.shown()], modules) == []

    reworded = _module(
        tmp_path, monkeypatch, "printer_v2", 'print(f"  held-out recall {m} of {n} ({r:.2f})")\n'
    )
    assert formats.drifted([line], [recorded.shown()], reworded) == [
        "line 1 'held-out recall: 10/10 = 1.00': the code no longer prints the format 'held-out recall: {}/{} = {}'"
    ]


def test_percent_and_brace_formats_explain_lines_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = _module(
        tmp_path,
        monkeypatch,
        "printer_v3",
        """
        log.info("wrote shard %d/%d to %s", 0, 1, out)
        print("capacity for a peak of {} requests/s".format(40))
        """,
    )
    assert formats.explain("wrote shard 0/1 to demo-output/dataset", modules) is not None
    assert formats.explain("capacity for a peak of 40 requests/s", modules) is not None
    assert formats.explain("something nobody printed", modules) is None


def test_a_metric_line_the_contract_no_longer_prints_fails() -> None:
    values = {key: 0.5 for key in metrics.KEYS}
    assert metric_lines_drift([f"    {metrics.format_epoch_line(3, 12, values)}"]) == []
    older = f"{metrics.PREFIX} epoch=3/12 precision=0.5 recall=0.5"  # fewer keys than today's contract
    assert len(metric_lines_drift([older])) == 1


def test_an_unclosed_marker_is_named_with_file_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n<!-- transcript: demo -->\n```text\n```\n")
    with pytest.raises(blocks.BlockError, match=r"page\.md:3: transcript 'demo' has no closing"):
        blocks.blocks(page)
