"""How long `howto bench train` measures its matmul ceiling: torch-free, so the CLI shows the defaults."""

from __future__ import annotations

CEILING_SAMPLE_SECONDS = 0.5  # each sample of the ceiling taken between two timed steps
CEILING_SECONDS = 3.0  # each measurement of the ceiling before and after a precision's steps
