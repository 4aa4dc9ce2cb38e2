"""keep_freed_memory (models/cpu_allocator.py): a large tensor freed and allocated again reuses mapped
memory instead of page-faulting it in anew. Run in child processes, since the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from models.cpu_allocator import _mallopt

ROUNDS = 32  # the heap settled within 11 rounds in every run measured
PROGRAM = textwrap.dedent(
    f"""
    import resource, sys
    import torch
    from models.cpu_allocator import keep_freed_memory
    if sys.argv[1] == "kept":
        assert keep_freed_memory() is True
        assert keep_freed_memory() is True  # once per process; a second call is a no-op
    ROUNDS = {ROUNDS}
    def faults_of_one_round():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.ones(8 << 20)  # 32 MB, touched in full
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(" ".join(str(faults_of_one_round()) for _ in range(ROUNDS)))
    """
)


def _faults(mode: str) -> list[int]:
    """Minor page faults of each round of allocating, filling and freeing a 32 MB tensor."""
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return [int(f) for f in done.stdout.strip().splitlines()[-1].split()]


@pytest.mark.skipif(_mallopt() is None, reason="not glibc: the allocator is left as it is")
def test_a_freed_large_tensor_is_reused_without_page_faults() -> None:
    """Without the setting every round maps the block anew; with it the heap grows for the first rounds
    (a freed block does not always fit the next, slightly larger aligned request: 5-10 rounds measured)
    and then serves every round from memory already mapped."""
    pages = (32 << 20) // 4096
    last = 8
    assert all(f > pages // 2 for f in _faults("plain")[-last:])
    assert all(f < pages // 20 for f in _faults("kept")[-last:])
