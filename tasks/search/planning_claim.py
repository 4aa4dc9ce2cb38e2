"""One crawl at a time picks and numbers new `videos` shards in a data root, with no lock.

Two crawls planning at once (a scheduled re-crawl beside a long collection, a deployment run retried while
the first still runs) would both number from the same `next_video_shard`, one plan overwriting the other's,
and both pick the same new videos. A lock is not there on an object store, so each crawl writes a claim of
its own name first and then lists the claims: if both listed before the other wrote, each listing came
before the other's write and after its own, which cannot be. So at least one sees the other and is refused
(both may be, in a narrow window: a rerun then goes ahead). Planning takes seconds; a claim older than
STALE_S was left by a killed crawl and is removed.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from storage.atomic import atomic_write_bytes, is_temp_name
from storage.layout import DataRoot
from tasks.search.plans import PLANS_DIR

CLAIMS = "planning"
STALE_S = 3600.0


class CrawlPlanning(RuntimeError):
    """Another crawl is picking and numbering new videos shards in the same data root right now."""


def _claims(root: DataRoot) -> list[tuple[str, dict[str, Any]]]:
    """(path, claim) of every claim now in the root; one removed meanwhile is skipped."""
    folder = root.path(PLANS_DIR, CLAIMS)
    if not root.exists(folder):
        return []
    found = []
    for path in sorted(root.fs.glob(f"{folder}/*.json")):
        if is_temp_name(path):
            continue
        try:
            with root.open(path, "rb") as handle:
                found.append((path, dict(json.loads(handle.read().decode()))))
        except FileNotFoundError:  # that crawl finished its planning between the listing and the read
            continue
    return found


def _describe(claim: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(claim.get("created_at") or 0)))
    return f"{claim.get('crawl_id')} on {claim.get('host')} (pid {claim.get('pid')}), since {since} UTC"


@contextmanager
def planning_claim(root: DataRoot, crawl_id: str, *, now: float | None = None) -> Iterator[None]:
    """Hold this crawl's claim while it picks and numbers new videos shards; CrawlPlanning if another
    crawl holds one. The claim is removed on the way out, whatever happens inside."""
    name = f"{crawl_id}.{uuid.uuid4().hex}.json"
    mine = root.path(PLANS_DIR, CLAIMS, name)
    created = time.time() if now is None else now
    claim = {"crawl_id": crawl_id, "created_at": created, "host": socket.gethostname(), "pid": os.getpid()}
    atomic_write_bytes(root, mine, json.dumps(claim, sort_keys=True).encode())
    try:
        for path, other in _claims(root):
            if path.rsplit("/", 1)[-1] == name:  # by name: an object store lists paths without the protocol
                continue
            if created - float(other.get("created_at") or 0) > STALE_S:
                root.fs.rm(path)  # left by a crawl killed while planning
                continue
            raise CrawlPlanning(
                f"{root.url}: another crawl is choosing and numbering new videos in this data root "
                f"({_describe(other)}): run one crawl at a time; run this one again when that one has "
                f"started probing (a claim left by a killed crawl, {path}, is ignored after "
                f"{STALE_S / 3600:g} h)"
            )
        yield
    finally:
        if root.exists(mine):
            root.fs.rm(mine)
