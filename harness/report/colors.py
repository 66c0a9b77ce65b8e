"""One colour per status, shared by the HTML and PNG heatmaps."""

from __future__ import annotations

NOT_RUN = "not-run"

COLORS = {
    "pass": "#2e9e4f",
    "mismatch": "#f29e38",
    "shape-mismatch": "#e3702d",
    "dtype-mismatch": "#c9772a",
    "export-error": "#d64545",
    "crash": "#7d1230",
    "invalid-model": "#a45cc8",
    "opset-not-honored": "#e8c920",
    "runtime-unsupported": "#5b8bd6",
    "runtime-error": "#2f4f9a",
    "timeout": "#6b4226",
    "pass-error": "#1f8a8a",
    "pass-invalid-model": "#4fb3b3",
    "pass-changed-result": "#0e5c5c",
    "harness-error": "#3a3a3a",
    "skipped": "#b8b8b8",
    NOT_RUN: "#f1f1f1",
}


def color(status: str) -> str:
    """The colour of ``status`` (unknown statuses are magenta, to stand out)."""
    return COLORS.get(status, "#ff00ff")
