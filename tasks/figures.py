"""Matplotlib figures drawn off-screen and returned as PNG bytes (reports, training curves, comparisons)."""

from __future__ import annotations

import io
from typing import Any


def new_figure(width: float, height: float, cols: int = 1) -> tuple[Any, Any]:
    """A figure with `cols` axes side by side on the Agg backend (files only: never open a window)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(1, cols, figsize=(width, height))


def figure_png(fig: Any, dpi: int = 90) -> bytes:
    """The figure as PNG bytes, closed afterwards so long runs do not pile figures up in memory."""
    from matplotlib import pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()
