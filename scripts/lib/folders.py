"""No command deletes a folder it did not create: a command's working folder carries its marker file
(:func:`claim_own_folder`, demo and gpu_check ``--workdir``); synth recognises its own assemblies (scripts/synth.py
``--outdir``)."""

from __future__ import annotations

from pathlib import Path

from scripts.lib.cli import OperatorError


def check_own_folder(folder: Path, marker: str, *, option: str) -> None:
    """Refuse ``folder`` unless the command may clear what it writes there: missing, empty, or carrying the
    command's ``marker`` file (written by :func:`claim_own_folder` when the command took the folder over)."""
    if not folder.is_dir() or (folder / marker).is_file():
        return
    entries = sorted(p.name for p in folder.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise OperatorError(
            f"{option} {folder}: holds {shown} and no {marker} marker, so this command did not create it (and it "
            f"replaces its sub-folders there): choose a new or empty folder"
        )


def claim_own_folder(folder: Path, marker: str, *, option: str, command: str) -> None:
    """Take ``folder`` over as the command's working folder (checked by :func:`check_own_folder`), marking it."""
    check_own_folder(folder, marker, option=option)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / marker).is_file():
        (folder / marker).write_text(
            f"created by {command}, which replaces its sub-folders here on each run\n"
        )
