"""support.png: the op x opset heatmap as an image (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from harness.core import status as st
from .aggregate import Summary, cell_status
from .colors import COLORS, NOT_RUN

#: Tallest image, in inches; rows shrink (and labels go) beyond it.
MAX_HEIGHT_IN = 60.0


def write(summary: Summary, path: Path) -> None:
    """Draw one panel per framework/exporter/device and save ``path`` (deterministic metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    from .aggregate import declared_opsets

    names = [*st.ALL, NOT_RUN]
    names += sorted({s for g in summary.cells.values() for c in g.values() for s in c["counts"]} - set(names))
    index = {s: i for i, s in enumerate(names)}
    cmap = ListedColormap([COLORS.get(s, "#ff00ff") for s in names])
    groups = list(summary.rows.items()) or [(("none", "none", "none"), [])]
    n_rows = sum(max(len(r), 1) for _, r in groups)
    row_in = min(0.22, MAX_HEIGHT_IN / max(n_rows, 1))
    opsets = summary.opsets or [0]
    height = 1.2 + sum(0.6 + row_in * max(len(r), 1) for _, r in groups)
    fig = plt.figure(figsize=(max(6.0, 2.5 + 0.32 * len(opsets)), height))
    ratios = [max(len(r), 1) + 0.6 / row_in for _, r in groups]
    axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": ratios})[:, 0]
    for ax, (g, rows) in zip(axes, groups):
        cells = summary.cells.get(g, {})
        grid = [[index[cell_status(cells[(r.kernel, o)]["counts"])] if (r.kernel, o) in cells
                 else index[NOT_RUN] for o in opsets] for r in rows] or [[index[NOT_RUN]] * len(opsets)]
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, aspect="auto", interpolation="nearest")
        for y, r in enumerate(rows if row_in >= 0.12 else ()):  # outline the declared range
            cols = [x for x, o in enumerate(opsets) if o in declared_opsets(r.declared)]
            if cols:
                ax.add_patch(Rectangle((cols[0] - 0.5, y - 0.5), cols[-1] - cols[0] + 1, 1, fill=False,
                                       edgecolor="black", linewidth=1.6, zorder=3))
        ax.set_title("/".join(g), fontsize=9, loc="left")
        ax.set_xticks(range(len(opsets)), [str(o) for o in opsets], fontsize=7)
        if row_in >= 0.12:
            ax.set_yticks(range(len(rows)), [r.kernel for r in rows], fontsize=7)
        else:
            ax.set_yticks([])
        ax.tick_params(length=0)
        if row_in >= 0.12:  # white lines between cells, only where rows are tall enough to read
            ax.set_xticks([x - 0.5 for x in range(1, len(opsets))], minor=True)
            ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
            ax.grid(which="minor", color="white", linewidth=0.8)
        ax.tick_params(which="minor", length=0)
    used = sorted({s for g in summary.cells.values() for c in g.values() for s in [cell_status(c["counts"])]},
                  key=lambda s: index[s])
    handles = [Patch(color=COLORS.get(s, "#ff00ff"), label=s) for s in [*used, NOT_RUN]]
    handles.append(Patch(fill=False, edgecolor="black", label="declared range"))
    fig.legend(handles=handles, loc="upper center", ncol=min(5, len(handles)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / height))
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
