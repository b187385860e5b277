"""What the pages show, as data: plotly figures (class counts, top-5 guesses, the clickable confusion matrix,
training curves, per-class F1 across runs, UMAP maps), image grids and where a training job stands. Pure functions of data, so they are
tested without a browser."""
from __future__ import annotations

import base64
import html
import io
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

from kmnist.classes import ClassInfo, hentaigana, k49_classes
from kmnist.embed import Embedding
from kmnist.jobs import Job
from kmnist.predict import Guess

CONFUSION_PX = 640  # height of the confusion-matrix figure; markers are sized to fill its cells
MARK_PX = 30  # size of a star on a map: ten times a map point, readable over a dense cluster
MARGIN = dict(l=10, r=10, t=40, b=10)
THRESHOLD_RED = "#e45756"  # the dashed threshold line of F1 charts


def class_counts(counts: np.ndarray, classes: Sequence[ClassInfo], title: str) -> go.Figure:
    """Images per class as bars, the characters on the axis."""
    counts = np.asarray(counts)
    fig = go.Figure(go.Bar(
        x=[c.char for c in classes], y=counts, marker_color="#4c78a8",
        customdata=[[c.romaji, c.index] for c in classes],
        hovertemplate="%{x} (%{customdata[0]}, class %{customdata[1]}): %{y:,} images<extra></extra>"))
    fig.update_layout(title=title, margin=MARGIN, height=360, yaxis_title="images", bargap=0.15,
                      xaxis=dict(type="category", tickfont=dict(size=16 if len(classes) <= 12 else 13)))
    return fig


def top_guesses(guesses: Sequence[Guess]) -> go.Figure:
    """The top-k probabilities as horizontal bars, the best guess on top."""
    labels = [f"{g.char}  {g.romaji}" + (f" · {g.kanji}" if g.kanji else "") for g in guesses]
    probs = [g.prob for g in guesses]
    fig = go.Figure(go.Bar(
        x=probs, y=labels, orientation="h", marker_color=["#e45756"] + ["#4c78a8"] * (len(guesses) - 1),
        text=[f"{p:.1%}" for p in probs], textposition="auto",
        hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(margin=MARGIN, height=60 + 44 * len(guesses), xaxis=dict(range=[0, 1], tickformat=".0%"),
                      yaxis=dict(autorange="reversed", tickfont=dict(size=18)), title="Top guesses")
    return fig


def share_text(v: float) -> str:
    """A row share as a cell label: one decimal under 10%, so a cell of a few images never reads "0%"."""
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


def format_seconds(seconds: float) -> str:
    """A duration as people say it: "45 s", "1 min 05 s", "2 h 03 min"."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(stage: str, elapsed: float, estimate: float) -> str:
    """A progress line for a slow step: the stage, the time spent and the time probably left."""
    left = estimate - elapsed
    guess = (f"about {format_seconds(left)} left" if left >= 1
             else f"longer than the estimated {format_seconds(estimate)}")
    return f"{stage} · {format_seconds(elapsed)} elapsed · {guess}"


def job_line(job: Job) -> str:
    """One line: where a training job stands, e.g. "epoch 2/12 · batch 10/43 · about 3 min 05 s left"."""
    s = job.status
    if job.state == "running":
        eta = s.get("eta_s")
        return (f"epoch {s.get('epoch', 0)}/{s.get('epochs', '?')} · batch {s.get('batch', 0)}/{s.get('batches', '?')}"
                + (f" · about {format_seconds(eta)} left" if eta is not None else ""))
    if job.state == "starting":
        return "starting: loading TensorFlow and the data"
    return job.state


def job_fraction(job: Job) -> float:
    """Share of a training job done, 0..1, from epoch and batch."""
    s = job.status
    if job.state == "completed":
        return 1.0
    epochs, batches = s.get("epochs") or 0, s.get("batches") or 0
    if not epochs or not batches:
        return 0.0
    done = (max(s.get("epoch", 1) - 1, 0) * batches + s.get("batch", 0)) / (epochs * batches)
    return min(max(done, 0.0), 1.0)


def live_point(job: Job) -> tuple[float, dict[str, float]] | None:
    """The running epoch's metrics so far and where they sit on an epoch axis (epoch e ends at x = e)."""
    s = job.status
    metrics = {k: v for k, v in (s.get("metrics") or {}).items() if k in ("loss", "accuracy")}
    if job.state != "running" or not s.get("batches") or not metrics:
        return None
    return max(s.get("epoch", 1) - 1, 0) + s.get("batch", 0) / s["batches"], metrics


def confusion(cm: np.ndarray, classes: Sequence[ClassInfo], normalise: bool = False,
              chosen: tuple[int, int] | None = None) -> go.Figure:
    """The confusion matrix as a scatter of square markers, one per cell, so a click selects a cell.

    `chosen` (true, predicted) is outlined; after a click Plotly would fade every other cell, so selection
    keeps them all fully drawn.

    Rows are true classes (top to bottom), columns predicted classes. Each point's customdata is
    [true, predicted, count, row share, true char, predicted char]; `cell_from_selection` reads it back.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = len(cm)
    support = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    share = cm / support
    true, pred = np.divmod(np.arange(n * n), n)
    counts = cm.ravel()
    shares = share.ravel()
    value = shares if normalise else counts
    chars = [c.char for c in classes]
    custom = [[int(t), int(p), int(k), float(s), chars[t], chars[p]]
              for t, p, k, s in zip(true, pred, counts, shares)]
    off = true != pred
    cell_px = (CONFUSION_PX - 90) / n
    fig = go.Figure()
    # Hits and mistakes get their own colour scales: on one scale the hits would wash out every mistake.
    for mask, scale in ((~off, "Greens"), (off, "Reds")):
        shown = value[mask]
        top = max(float(shown.max(initial=0)), 1e-9)
        fig.add_trace(go.Scatter(
            x=pred[mask], y=true[mask], mode="markers+text" if n <= 12 else "markers",
            marker=dict(symbol="square", size=cell_px * 0.92, color=shown, colorscale=scale,
                        cmin=0, cmax=top,
                        line=dict(width=0.5, color="#bbbbbb")),
            text=[(share_text(v) if normalise else f"{v:d}") if v else "" for v in shown],
            textfont=dict(size=11, color=["white" if v > 0.55 * top else "#333333" for v in shown]),  # legible
            customdata=[c for c, m in zip(custom, mask) if m],
            selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
            hovertemplate=("true %{customdata[4]} → predicted %{customdata[5]}<br>"
                           "count %{customdata[2]} (%{customdata[3]:.1%} of true %{customdata[4]})<extra></extra>")))
    if chosen is not None:
        fig.add_trace(go.Scatter(x=[chosen[1]], y=[chosen[0]], mode="markers", hoverinfo="skip",
                                 customdata=[custom[chosen[0] * n + chosen[1]]],
                                 marker=dict(symbol="square-open", size=cell_px * 0.98, color="#111111",
                                             line=dict(width=3))))
    ticks = dict(tickmode="array", tickvals=list(range(n)), ticktext=chars, tickfont=dict(size=14 if n <= 12 else 10),
                 showgrid=False, zeroline=False)
    fig.update_layout(height=CONFUSION_PX, width=CONFUSION_PX, margin=dict(l=60, r=10, t=30, b=60),
                      showlegend=False, plot_bgcolor="white",
                      xaxis=dict(title="predicted", range=[-0.5, n - 0.5], **ticks),
                      # first class at the top, as printed matrices read
                      yaxis=dict(title="true", range=[n - 0.5, -0.5], **ticks))
    return fig


def cell_from_selection(selection: Mapping | None) -> tuple[int, int] | None:
    """(true, predicted) of the first selected confusion-matrix point, or None when nothing is selected."""
    points = (selection or {}).get("points") or []
    if not points:
        return None
    point = points[0]
    custom = point.get("customdata")
    if custom:
        return int(custom[0]), int(custom[1])
    return int(round(point["y"])), int(round(point["x"]))


def history(hist: Mapping[str, Sequence[float]]) -> go.Figure:
    """Loss and accuracy per epoch, training and validation, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.08)
    colours = {"": "#4c78a8", "val_": "#f58518"}
    for col, metric in enumerate(("loss", "accuracy"), start=1):
        for prefix, colour in colours.items():
            values = hist.get(prefix + metric)
            if not values:
                continue
            fig.add_trace(go.Scatter(
                x=list(range(1, len(values) + 1)), y=list(values), mode="lines+markers",
                name="validation" if prefix else "training", line=dict(color=colour),
                legendgroup=prefix or "train", showlegend=col == 1), row=1, col=col)
    epochs = max((len(v) for v in hist.values()), default=1)
    # Whole epochs only: Plotly would otherwise tick 1.2, 1.4, … on a short run.
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, -(-epochs // 10)))
    fig.update_layout(height=340, margin=MARGIN, legend=dict(orientation="h", y=-0.25))
    return fig


# Colours well apart from each other (Tableau 10), less the red of the threshold lines.
RUN_PALETTE = [c for c in qualitative.T10 if c.lower() != THRESHOLD_RED]


def run_colours(run_ids: Sequence[str]) -> dict[str, str]:
    """A colour per run, told apart in one chart: each run takes the palette colour its id hashes to, or the next
    one no other run here has taken (in id order). So a run keeps its colour while the runs shown stay the same,
    and up to len(RUN_PALETTE) runs never share one."""
    n, taken, colours = len(RUN_PALETTE), set(), {}
    for run_id in sorted(run_ids):
        start = zlib.crc32(run_id.encode()) % n
        slot = next((s % n for s in range(start, start + n) if s % n not in taken), start)
        taken.add(slot)
        colours[run_id] = RUN_PALETTE[slot]
    return colours


def f1_across_runs(table: pd.DataFrame, threshold: float | None = None) -> go.Figure:
    """Grouped bars of F1 per class (columns) for each run (rows), with the weak-class line."""
    colours = run_colours([str(run_id) for run_id in table.index])
    fig = go.Figure([go.Bar(name=str(run_id), x=list(table.columns), y=row.to_numpy(),
                            marker_color=colours[str(run_id)],
                            hovertemplate=f"{run_id}<br>%{{x}}: F1 %{{y:.3f}}<extra></extra>")
                     for run_id, row in table.iterrows()])
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color=THRESHOLD_RED, annotation_text=f"threshold {threshold:.2f}")
    # Keep room for five classes, so one or two weak classes do not become slabs across the page.
    pad = max(0.5, (5 - len(table.columns)) / 2)
    fig.update_layout(barmode="group", height=360, margin=MARGIN, yaxis=dict(range=[0, 1.02], title="F1"),
                      xaxis=dict(type="category", tickfont=dict(size=16), range=[-pad, len(table.columns) - 1 + pad]),
                      legend=dict(orientation="h", y=-0.2), showlegend=True)
    return fig


# Example images: which images to show per class, and how to lay them out crisply.

def samples(labels: np.ndarray, label: int, k: int, seed: int = 0) -> np.ndarray:
    """Up to k positions of images with this label, a seeded random pick in dataset order."""
    idx = np.flatnonzero(np.asarray(labels) == label)
    if len(idx) <= k:
        return idx
    return np.sort(np.random.default_rng(seed + label).choice(idx, size=k, replace=False))


def samples_per_class(labels: np.ndarray, num_classes: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """`samples` for every class in label order (empty arrays for classes without images)."""
    return [samples(labels, c, k, seed) for c in range(num_classes)]


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so browsers show sharp pixels instead of a blur."""
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)  # grey (H, W) or colour (H, W, 3)


def tile(images: np.ndarray, cols: int, factor: int = 2, gap: int = 2, fill: int = 64) -> np.ndarray:
    """One uint8 picture of images (N, H, W) in a grid of `cols` columns, enlarged, with grey gaps.

    One picture per grid keeps a page to a single image element however many samples it shows.
    """
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError("tile needs a non-empty stack of images (N, H, W)")
    n, h, w = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    cell_h, cell_w = h * factor, w * factor
    out = np.full((rows * cell_h + (rows - 1) * gap, cols * cell_w + (cols - 1) * gap), fill, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        top, left = r * (cell_h + gap), c * (cell_w + gap)
        out[top: top + cell_h, left: left + cell_w] = enlarge(img, factor)
    return out


# UMAP maps: one trace per class, hover shows the character; reading a selection.

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
    # Marks are WebGL too and come last: Plotly draws every WebGL trace above every SVG one, so an SVG star
    # would sit under 16,000 points.
    for name, xy in (marks or {}).items():
        fig.add_trace(go.Scattergl(
            x=[xy[0]], y=[xy[1]], mode="markers", name=name, hovertemplate=f"{name}<extra></extra>",
            marker=dict(symbol="star", size=MARK_PX, color="black", line=dict(color="white", width=3))))
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


# The 49 characters: a reference table with the hentaigana set in the app's own font.

HENTAIGANA_FONT = "Kmnist Hentaigana"  # family of static/fonts/hentaigana.woff2 (scripts/build_font.py)
FONT_URL = "app/static/fonts/hentaigana.woff2"  # relative: right under any page URL and base path
REFERENCE_FORMS = 3  # typical training forms shown per character


@dataclass
class CharacterRow:
    info: ClassInfo  # the K49 class
    hentaigana: str  # its Unicode variant kana, "" for ゝ
    known: bool  # the active model knows it
    forms: np.ndarray  # uint8 (N, 28, 28): typical real training forms, most typical first (none without data)
    drawings: int  # the user's saved drawings of it


def character_rows(known: Sequence[ClassInfo], forms, drawing_counts: Mapping[str, int],
                   per_class: int = REFERENCE_FORMS) -> list[CharacterRow]:
    """One row per K49 character: its variant kana, whether the model knows it, its typical forms (from
    `forms`, a tutor.Forms in the `known` class table, or None) and how many drawings of it are saved."""
    index = {c.char: c.index for c in known}
    empty = np.zeros((0, 28, 28), np.uint8)
    return [CharacterRow(c, hentaigana(c.char), c.char in index,
                         forms.of(index[c.char])[:per_class] if forms is not None and c.char in index else empty,
                         int(drawing_counts.get(c.char, 0))) for c in k49_classes()]


def png_data_uri(image: np.ndarray, factor: int = 2) -> str:
    """A small image as a PNG data URI, enlarged with sharp pixels."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(enlarge(np.asarray(image, np.uint8), factor)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def hentaigana_css(font_url: str = FONT_URL) -> str:
    """The @font-face rule and the classes the reference uses (fallback: the system's fonts)."""
    return (f"<style>@font-face{{font-family:'{HENTAIGANA_FONT}';src:url('{font_url}') format('woff2');"
            "font-display:swap;unicode-range:U+1B000-1B11F}"
            f".kana-ref td{{vertical-align:middle;padding:4px 8px}}.kana-ref .big{{font-size:2rem;line-height:1.1}}"
            f".kana-ref .hg{{font-family:'{HENTAIGANA_FONT}','HanaMinA','IPAmjMincho',serif;font-size:1.8rem;"
            "letter-spacing:.15em}.kana-ref img{image-rendering:pixelated;margin-right:2px}"
            ".kana-ref .muted{opacity:.55;letter-spacing:0;font-family:inherit}.kana-ref .forms{white-space:nowrap}</style>")


def characters_html(rows: Sequence[CharacterRow], font_url: str = FONT_URL) -> str:
    """The reference table: character, romaji, 字母, hentaigana (named on hover), typical forms, drawings."""
    head = ("<tr><th>#</th><th>kana</th><th>romaji</th><th>字母</th><th>hentaigana (variant kana)</th>"
            "<th>typical training forms</th><th>your drawings</th></tr>")
    body = []
    for r in rows:
        c = r.info
        letters = "".join(f'<span title="{html.escape(unicodedata.name(h))} U+{ord(h):04X}">{h}</span>'
                          for h in r.hentaigana) or '<span class="muted" style="font-size:1rem">none of its own</span>'
        forms = ("".join(f'<img src="{png_data_uri(f)}" width="56" height="56" alt="form of {c.char}">'
                         for f in r.forms) if len(r.forms)
                 else f'<span class="muted">{"not here" if r.known else "no training images"}</span>')
        body.append(f'<tr data-char="{c.char}"><td>{c.index}</td><td class="big">{c.char}</td><td>{c.romaji}</td>'
                    f'<td class="big">{c.kanji or "—"}</td><td class="hg">{letters}</td><td class="forms">{forms}</td>'
                    f"<td>{r.drawings}</td></tr>")
    return hentaigana_css(font_url) + f'<table class="kana-ref">{head}{"".join(body)}</table>'


def variants_html(row: CharacterRow, font_url: str = FONT_URL) -> str:
    """One character large: the hiragana, its 字母 and each variant kana with its Unicode name."""
    c = row.info
    cells = "".join(f'<figure style="display:inline-block;margin:0 1.2em 0.6em 0;text-align:center">'
                    f'<div class="hg" style="font-size:4rem">{h}</div><figcaption style="font-size:.75rem">'
                    f'{html.escape(unicodedata.name(h).removeprefix("HENTAIGANA LETTER "))}<br>U+{ord(h):04X}'
                    "</figcaption></figure>" for h in row.hentaigana)
    return (hentaigana_css(font_url) + f'<div class="kana-ref" data-variants="{c.char}">'
            f'<div class="big" style="font-size:3rem">{c.char} <span style="font-size:1.2rem">{c.romaji}'
            f'{f" · from {c.kanji} (字母)" if c.kanji else ""}</span></div>'
            + (cells or "<p>No variant kana of its own in Unicode.</p>") + "</div>")

