"""`howto --version` names the code: package version and, in a checkout, the git commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tasks.common import code_version

HOWTO = str(Path(sys.executable).with_name("howto"))


def test_version_prints_the_code_version_markers_record() -> None:
    proc = subprocess.run([HOWTO, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"howto {code_version()}"
    if (Path(__file__).resolve().parents[2] / ".git").exists():
        assert "+g" in proc.stdout
