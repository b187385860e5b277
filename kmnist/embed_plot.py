"""A UMAP map as a plotly figure (one trace per class, hover shows the character), and reading a selection."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from kmnist.classes import ClassInfo
from kmnist.embed import Embedding

UNLABELLED = "#7f7f7f"  # every point's colour when the labels are not here


def palette(n: int) -> list[str]:
    """Distinct colours: a qualitative set for up to 10 classes, samples of a rainbow for more (K49)."""
    if n <= len(qualitative.D3):
        return qualitative.D3[:n]
    return sample_colorscale("Turbo", [i / (n - 1) for i in range(n)])


def origins(emb: Embedding) -> np.ndarray:
    """Where each point comes from, e.g. "train #123", for hover text."""
    which, pos = emb.split_of()
    names = np.array(emb.splits, dtype=object)[which]
    return np.array([f"{s} #{p}" for s, p in zip(names, pos)], dtype=object)


def map_figure(emb: Embedding, labels: np.ndarray | None, classes: Sequence[ClassInfo] | None,
               marks: Mapping[str, np.ndarray] | None = None, height: int = 560) -> go.Figure:
    """Points coloured by class (grey when labels is None); `marks` adds named stars, e.g. the last drawing.

    Every map point carries its position in the map as customdata, so a selection names the points.
    """
    fig = go.Figure()
    where = origins(emb)
    if labels is None or classes is None:
        groups = [(np.arange(len(emb.coords)), "images", UNLABELLED, "%{text}<extra></extra>")]
    else:
        colours = palette(len(classes))
        groups = [(np.flatnonzero(labels == c.index), f"{c.char} {c.romaji}".strip(), colours[c.index],
                   f"<b style='font-size:22px'>{c.char}</b> {c.romaji} · class {c.index}<br>%{{text}}<extra></extra>")
                  for c in classes]
    for members, name, colour, hover in groups:
        if len(members):
            fig.add_trace(go.Scattergl(
                x=emb.coords[members, 0], y=emb.coords[members, 1], mode="markers", name=name,
                marker=dict(size=3, color=colour, opacity=0.7), customdata=members, text=where[members],
                hovertemplate=hover))
    for name, xy in (marks or {}).items():
        fig.add_trace(go.Scatter(
            x=[xy[0]], y=[xy[1]], mode="markers", name=name, hovertemplate=f"{name}<extra></extra>",
            marker=dict(symbol="star", size=20, color="black", line=dict(color="white", width=2))))
    # UMAP axes carry no units, so the map fills the box instead of keeping an aspect ratio.
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0), dragmode="lasso",
                      legend=dict(itemsizing="constant", font=dict(size=15), orientation="h", y=-0.02,
                                  yanchor="top"),
                      xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def selected_points(selection: Mapping | None) -> np.ndarray:
    """Map positions of the selected points (stars and other marks are left out), in selection order."""
    found = []
    for point in (selection or {}).get("points") or []:
        custom = point.get("customdata")
        if custom is None or custom == []:
            continue
        found.append(int(np.ravel(custom)[0]))
    return np.array(list(dict.fromkeys(found)), dtype=np.int64)
