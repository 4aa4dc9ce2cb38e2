"""keep_freed_memory (models/cpu_allocator.py): a large tensor freed and allocated again reuses mapped
memory instead of page-faulting it in anew. Run in child processes, since the setting is process-wide."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from models.cpu_allocator import _mallopt

PROGRAM = textwrap.dedent(
    """
    import resource, sys
    import torch
    from models.cpu_allocator import keep_freed_memory
    if sys.argv[1] == "kept":
        assert keep_freed_memory() is True
        assert keep_freed_memory() is True  # once per process; a second call is a no-op
    def faults_of_one_round():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.ones(8 << 20)  # 32 MB, touched in full
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    faults_of_one_round()  # the first round maps the memory either way
    print(min(faults_of_one_round() for _ in range(3)))
    """
)


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_mallopt() is None, reason="not glibc: the allocator is left as it is")
def test_a_freed_large_tensor_is_reused_without_page_faults() -> None:
    pages = (32 << 20) // 4096
    assert _faults("plain") > pages // 2  # glibc unmaps a 32 MB block on free and maps it anew
    assert _faults("kept") < pages // 20
