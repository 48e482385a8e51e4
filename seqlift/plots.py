"""Contribution logos with logomaker: letter heights are scores, positive above the axis, negative below.

Figures are ``matplotlib.figure.Figure`` objects saved directly: no pyplot, so a notebook's backend and
its open figures are never touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs
from .scorefile import ScoreFile
from .variantfile import VariantFile
from .sequences import ALPHABET, parse_coordinates

LOGO_FORMATS = (".png", ".svg", ".pdf")
# Written into every logo's metadata (PNG Software, SVG/PDF Creator), so a rerun knows the file is its own.
LOGO_MARK = "seqlift sequence logo"
# Without --start/--end/--full a logo shows this many bp around the strongest signal: 200 bp drew 5,400 px wide.
DEFAULT_WINDOW = 50
# One image holds at most this many logos and pixels: 800 logos drew a 356-megapixel PNG in 4 minutes that image
# libraries refuse to open (Pillow stops at 89 megapixels).
MAX_LOGOS = 100
MAX_PIXELS = 64_000_000
# Shades are drawn behind the letters (logomaker draws its glyphs at zorder 0), never over them.
SHADE_ZORDER = -5
# Shading of motifs by name, given to a table's sorted unique names in turn: one table colours a name the same way
# in every image drawn from it, whichever sequences are drawn. A ``colour`` column overrides it. Light named colours,
# none of them the letters' own (logomaker's classic A green, C blue, G orange, T red), so no letter is lost in them.
HIGHLIGHT_COLOURS = ("gold", "lightskyblue", "plum", "lightgrey", "khaki", "paleturquoise", "thistle", "wheat",
                     "lightsteelblue", "pink")


def strongest_window(per_position: np.ndarray, width: int) -> tuple[int, int]:
    """``(start, end)`` of the ``width``-bp window with the largest summed |score| ``(L,)``."""
    length = len(per_position)
    width = min(width, length)
    sums = np.convolve(np.abs(per_position), np.ones(width), mode="valid")
    start = int(np.argmax(sums))
    return start, start + width


def choose_sequences(names, totals, name: str | None, top: int | None) -> list[int]:
    """Indices of the sequences to draw: one by ``name``, or the ``top`` by total contribution."""
    names = list(names)
    if name is not None:
        if name not in names:
            raise SeqliftError(f"no sequence named '{name}' in the score file")
        return [names.index(name)]
    return list(np.argsort(-np.asarray(totals), kind="stable")[: max(1, top or 1)])


def logo_windows(per_position: np.ndarray, start=None, end=None, around_max=None, full=False) -> list[tuple[int, int]]:
    """``(start, end)`` drawn for each sequence of ``per_position`` ``(n, L)`` (scores summed over bases).

    ``start``/``end`` give one range for all; ``around_max`` W the W-bp window of each sequence with the largest
    summed |score|; ``full`` the whole sequence. With none of them, the strongest ``DEFAULT_WINDOW`` bp.
    """
    length = per_position.shape[1]
    if full and (start is not None or end is not None or around_max):
        raise SeqliftError("--full draws the whole sequence; give it or --start/--end/--around-max, not both")
    if around_max and (start is not None or end is not None):
        raise SeqliftError("--around-max chooses its own window; give it or --start/--end, not both")
    if not (full or around_max or start is not None or end is not None):
        around_max = DEFAULT_WINDOW
    if around_max:
        return [strongest_window(row, around_max) for row in per_position]
    s, e = start or 0, end if end is not None else length
    if not 0 <= s < e <= length:
        raise SeqliftError(f"window {s}-{e} is outside the sequence (0-{length})")
    return [(s, e)] * len(per_position)


def _shade(ax, motifs: pd.DataFrame, name: str, s: int, e: int, offset: int, colours: dict[str, str]):
    """Shade and label the motifs of sequence ``name`` that overlap the drawn window ``[s, e)``."""
    for row in motifs[motifs["name"] == name].itertuples():
        if row.end > s and row.start < e:
            ax.axvspan(max(row.start, s) + offset - 0.5, min(row.end, e) + offset - 0.5,
                       color=colours[str(row.motif)], alpha=0.3, linewidth=0, zorder=SHADE_ZORDER)
            ax.text(max(row.start, s) + offset, ax.get_ylim()[1], row.motif, fontsize=7, va="top")


def motif_colours(motifs: pd.DataFrame) -> dict[str, str]:
    """``motif name -> colour`` for a motifs table: its ``colour`` column's, where a name has one (one per name, as
    ``read_motif_table`` checks), else ``HIGHLIGHT_COLOURS`` given to the sorted unique names in turn."""
    names = sorted(motifs["motif"].astype(str).unique())
    colours = {name: HIGHLIGHT_COLOURS[i % len(HIGHLIGHT_COLOURS)] for i, name in enumerate(names)}
    if "colour" in motifs.columns:
        given = motifs.dropna(subset=["colour"]).drop_duplicates("motif")
        colours.update(zip(given["motif"].astype(str), given["colour"].astype(str)))
    return colours


def draw_logos(data: dict, indices: list[int], out, hypothetical=False, start=None, end=None,
               around_max=None, motifs: pd.DataFrame | None = None, width_per_bp=0.18, dpi=150, inputs=(),
               full=False):
    """Draw one logo row per sequence in ``indices`` and save by the extension of ``out`` (png/svg/pdf).

    data: ``names``, ``attrs``, ``task`` and ``contrib``/``hypothetical`` ``(n, L, 4)``. The window drawn is
    chosen by ``logo_windows`` (by default the strongest 50 bp). motifs: a table with name, motif, start and
    end (and optionally colour) whose rows are shaded, each motif name in ``motif_colours``' colour.
    inputs: the files the drawing was read from, which ``out`` may not overwrite.
    """
    import logomaker
    from matplotlib.figure import Figure

    out = Path(out)
    if out.suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"{out}: logo output must end in .png, .svg or .pdf")
    key = "hypothetical" if hypothetical else "contrib"
    windows = logo_windows(data["contrib"][indices].sum(-1), start, end, around_max, full)
    span = max(e - s for s, e in windows)
    size = (max(6.0, span * width_per_bp), 2.2 * len(indices))
    check_size(len(indices), size[0] * size[1] * dpi * dpi)
    fig = Figure(figsize=size)
    axes = fig.subplots(len(indices), 1, squeeze=False)
    attrs = data["attrs"]
    colours = motif_colours(motifs) if motifs is not None else {}
    for ax, i, (s, e) in zip(axes[:, 0], indices, windows):
        name = str(data["names"][i])
        coords = parse_coordinates(name)
        offset = coords[1] if coords else 0
        frame = pd.DataFrame(data[key][i, s:e], columns=list(ALPHABET), index=np.arange(s, e) + offset)
        logomaker.Logo(frame, ax=ax, color_scheme="classic", flip_below=False)
        ax.axhline(0, color="black", linewidth=0.5)
        if motifs is not None:
            _shade(ax, motifs, name, s, e, offset, colours)
        ax.set_ylabel("hypothetical contribution" if hypothetical else "contribution", fontsize=8)
        ax.set_xlabel(f"{coords[0]} (genome coordinates)" if coords else "position", fontsize=8)
        ax.set_title(f"{name} · task {data['task']} ({attrs.get('target', 'logit')}) · {attrs.get('method', '')} "
                     f"({attrs.get('rule', '')})", fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    kind = out.suffix.lower()[1:]
    with Outputs(inputs) as outputs:
        fig.savefig(outputs.file(out, ours=is_logo), dpi=dpi, format=kind,
                    metadata={"Software" if kind == "png" else "Creator": LOGO_MARK})
    return out


def check_size(n_logos: int, pixels: float):
    """Refuse an image too large to draw in reasonable time or to open afterwards (``MAX_LOGOS``, ``MAX_PIXELS``)."""
    if n_logos > MAX_LOGOS:
        raise SeqliftError(f"--top {n_logos}: one image holds at most {MAX_LOGOS} logos; draw the rest in more runs "
                           "(--name NAME picks one sequence)")
    if pixels > MAX_PIXELS:
        raise SeqliftError(f"the image would be {pixels / 1e6:.0f} megapixels (at most {MAX_PIXELS / 1e6:.0f}); draw "
                           "fewer sequences (--top) or a narrower window (--start/--end, --around-max)")


def read_motif_table(path) -> pd.DataFrame:
    """A motifs table to shade (TSV with name, motif, start, end columns, 0-based end-exclusive positions, and an
    optional colour (or color) column: any matplotlib colour per row, empty for the default palette's)."""
    path = Path(path)
    if not path.is_file():
        raise SeqliftError(f"{path}: motifs file not found")
    expected = "a TSV with name, motif, start and end columns, as seqlift simulate's motifs.tsv"
    try:
        motifs = pd.read_csv(path, sep="\t", dtype={"name": str, "motif": str, "colour": str, "color": str})
    except pd.errors.EmptyDataError:
        raise SeqliftError(f"{path}: the motifs file is empty; expected {expected}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SeqliftError(f"{path}: not a motifs table ({type(exc).__name__}); expected {expected}") from None
    missing = {"name", "motif", "start", "end"} - set(motifs.columns)
    if missing:
        raise SeqliftError(f"{path}: not a motifs table (missing column(s) {', '.join(sorted(missing))}); "
                           f"expected {expected}")
    for column in ("start", "end"):
        if not pd.api.types.is_integer_dtype(motifs[column]):
            raise SeqliftError(f"{path}: column '{column}' must hold whole numbers (positions in the sequence)")
    bad = motifs[(motifs["start"] < 0) | (motifs["end"] <= motifs["start"])]
    if len(bad):
        raise SeqliftError(f"{path}: line {int(bad.index[0]) + 2}: start must be >= 0 and below end")
    if "color" in motifs.columns:  # matplotlib's spelling
        if "colour" in motifs.columns:
            raise SeqliftError(f"{path}: has both a colour and a color column; keep one")
        motifs = motifs.rename(columns={"color": "colour"})
    if "colour" in motifs.columns:
        _check_colours(path, motifs)
    return motifs


def _check_colours(path: Path, motifs: pd.DataFrame):
    """The optional ``colour`` column: any matplotlib colour, or empty for the default palette's."""
    from matplotlib.colors import is_color_like

    motifs["colour"] = motifs["colour"].str.strip().replace("", np.nan)
    first = {}  # motif name -> (line, colour) of its first coloured row
    for index, motif, colour in motifs[["motif", "colour"]].dropna(subset=["colour"]).itertuples():
        line = int(index) + 2
        if not is_color_like(colour) or colour.lower() == "none":
            raise SeqliftError(f"{path}: line {line}: colour '{colour}' is not a matplotlib colour (a name such as "
                               "gold, #rrggbb, or leave it empty for the default palette)")
        seen_line, seen = first.setdefault(motif, (line, colour))
        if colour != seen:
            raise SeqliftError(f"{path}: line {line}: motif '{motif}' is coloured '{colour}' here but '{seen}' on "
                               f"line {seen_line}; give each motif one colour")


def is_logo(path) -> bool:
    """Whether ``path`` is a logo seqlift drew (its metadata names seqlift), which a new run may replace."""
    path = Path(path)
    try:
        return path.suffix.lower() in LOGO_FORMATS and path.stat().st_size < 64 << 20 and \
            LOGO_MARK.encode() in path.read_bytes()
    except OSError:
        return False


def draw_logo_file(scores_path, out, task=None, name=None, top=None, hypothetical=False, start=None, end=None,
                   around_max=None, motifs_path=None, inputs=(), full=False):
    """``seqlift logo``: draw the chosen sequences of a score file, reading only what it needs.

    motifs_path: a TSV of motifs to shade (name, motif, start, end and optionally colour; ``seqlift simulate``'s
    motifs.tsv is one), coloured as ``motif_colours`` says. The window is chosen as ``logo_windows`` says.
    """
    if Path(out).suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"{out}: logo output must end in .png, .svg or .pdf")
    inputs = [scores_path, motifs_path, *inputs]  # what ``out`` may not overwrite
    Outputs(inputs).check_file(out, ours=is_logo)
    motifs = read_motif_table(motifs_path) if motifs_path else None
    if top is not None and top > MAX_LOGOS:
        check_size(top, 0)  # before reading the scores
    with ScoreFile(scores_path, task) as scores:
        totals = None
        if name is None:
            totals = np.concatenate([c.reshape(len(c), -1).sum(1) for _, c in scores.chunks("contrib")])
        chosen = choose_sequences(scores.names, totals, name, top)
        scores.rows("one_hot", chosen)  # not drawn, but checked: a damaged file is refused whatever is drawn
        data = {"names": scores.names[chosen], "attrs": scores.attrs, "task": scores.task,
                "contrib": scores.rows("contrib", chosen), "hypothetical": scores.rows("hypothetical", chosen)}
    return draw_logos(data, list(range(len(chosen))), out, hypothetical, start, end, around_max, motifs,
                      inputs=inputs, full=full)


def draw_variant_logo(variants_path, out, variant: str, task=None, hypothetical=False, start=None, end=None,
                      width_per_bp=0.18, dpi=150):
    """``seqlift logo VARIANTS.h5 --variant ID``: the ref window's logo above the alt window's, on one y scale,
    the variant's bases shaded. variant: an ID, or ``chrom:pos:ref:alt`` (which tells apart the ALTs of a
    multi-allelic record that share an ID). The window drawn: ``start``..``end``, default 25 bp either side of the
    variant's first base (at ``L // 2``)."""
    import logomaker
    from matplotlib.figure import Figure

    out = Path(out)
    if out.suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"{out}: logo output must end in .png, .svg or .pdf")
    Outputs([variants_path]).check_file(out, ours=is_logo)
    with VariantFile(variants_path, task) as variants:
        i, task = variants.find(variant), variants.task
        key = "hypothetical" if hypothetical else "contrib"
        rows = {side: variants.rows(f"{side}_{key}", [i])[0] for side in ("ref", "alt")}
        predictions = {side: variants.rows(f"{side}_prediction", [i])[0] for side in ("ref", "alt")}
        ids, chrom, pos, ref, alt = variants.names, variants.chrom, variants.pos, variants.ref, variants.alt
        attrs = variants.attrs
    length = rows["ref"].shape[0]
    centre = length // 2
    s = max(0, centre - 25) if start is None else start
    e = min(length, centre + 26) if end is None else min(end, length)
    if e <= s:
        raise SeqliftError(f"--start {s} and --end {e}: end must be greater than start (window of {length} bp)")
    values = np.concatenate([rows["ref"][s:e], rows["alt"][s:e]])
    low, high = min(0.0, float(np.minimum(values, 0).sum(-1).min())), max(0.0, float(np.maximum(values, 0).sum(-1).max()))
    pad = 0.05 * (high - low or 1.0)
    fig = Figure(figsize=(max(6.0, (e - s) * width_per_bp), 4.4))
    axes = fig.subplots(2, 1, squeeze=False)[:, 0]
    first = int(pos[i]) - centre  # 1-based genome position (as the VCF's POS) of window index 0
    for ax, side, allele in zip(axes, ("ref", "alt"), (ref[i], alt[i])):
        frame = pd.DataFrame(rows[side][s:e], columns=list(ALPHABET), index=np.arange(s, e) + first)
        logomaker.Logo(frame, ax=ax, color_scheme="classic", flip_below=False)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.axvspan(first + centre - 0.5, first + centre + len(allele) - 0.5, color="gold", alpha=0.3,
                   linewidth=0, zorder=SHADE_ZORDER)
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel(f"{side} {key}", fontsize=8)
        ax.set_title(f"{ids[i]} {chrom[i]}:{pos[i]} {side.upper()} {allele} · task {task} "
                     f"({attrs.get('target', 'logit')}) prediction {predictions[side]:.3g}", fontsize=9)
        for spine in ("top", "right"):
            ax.spines[spine].set_visible(False)
    axes[1].set_xlabel(f"{chrom[i]} position (1-based, as the VCF's POS, of the ref window; alt bases after an indel "
                       "are shifted)",
                       fontsize=8)
    fig.tight_layout()
    kind = out.suffix.lower()[1:]
    with Outputs([variants_path]) as outputs:
        fig.savefig(outputs.file(out, ours=is_logo), dpi=dpi, format=kind,
                    metadata={"Software" if kind == "png" else "Creator": LOGO_MARK})
    return out


def draw_cooccurrence(together: pd.DataFrame, n_sequences: int, out: Path):
    """Heatmap of ``together`` (motifs × motifs: sequences holding both; the diagonal, the motif) as the fraction
    of the ``n_sequences`` scored, each cell labelled with its count (``seqlift hits``)."""
    from matplotlib.figure import Figure

    names, counts = list(together.columns), together.to_numpy()
    size = 1.5 + 0.6 * len(names)
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    image = ax.imshow(counts / max(n_sequences, 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > 0.6 * max(n_sequences, 1) else "black")
    fig.colorbar(image, ax=ax, label="fraction of sequences with both")
    ax.set_title(f"motif co-occurrence ({n_sequences} sequences)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def draw_spacing(distance: np.ndarray, counts: np.ndarray, first: str, second: str, out: Path):
    """Histogram of the distances (bp, start of ``second``'s core minus ``first``'s) between their instances in one
    sequence (``seqlift hits``), over the span where any occur."""
    from matplotlib.figure import Figure

    seen = np.flatnonzero(counts)
    lo, hi = (distance[seen[0]], distance[seen[-1]]) if len(seen) else (-1, 1)
    keep = (distance >= lo) & (distance <= hi)
    fig = Figure(figsize=(7, 2.8))
    ax = fig.add_subplot()
    ax.bar(distance[keep], counts[keep], width=1.0, color="steelblue")
    ax.set_xlabel(f"{second} start − {first} start (bp)")
    ax.set_ylabel("pairs of instances")
    ax.set_title(f"{first} and {second}: {int(counts.sum())} pairs in the same sequence")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
