"""Shard completion markers: the dataset is committed (``dataset.json`` written) only once every shard is done.

``dataset.json`` landing in the datasets bucket starts training, so no shard may write it while another shard's
images are still missing. Each shard writes ``_shards/<index>-of-<count>.done`` (holding the plan version) after
its images and labels, then looks for the markers of all shards of the same plan; the shard that sees them all
writes the metadata. Every shard writes its marker before it looks, so (with S3's read-after-write consistency)
the last shard to finish always sees every marker.
"""

from __future__ import annotations

from app.dataprep.storage import Destination

SHARDS_DIR = "_shards"


def marker(index: int, count: int) -> str:
    return f"{SHARDS_DIR}/{index}-of-{count}.done"


def mark_done(dest: Destination, index: int, count: int, version: str) -> None:
    dest.write_bytes(marker(index, count), f"{version}\n".encode())


def all_done(dest: Destination, count: int, version: str) -> bool:
    """True when every shard of this plan (same count, same version) has written its marker."""
    expected = f"{version}\n".encode()
    done = set(dest.list_files(SHARDS_DIR))
    return all(
        marker(i, count) in done and dest.read_bytes(marker(i, count)) == expected for i in range(count)
    )
