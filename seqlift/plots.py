"""Contribution logos with logomaker: letter heights are scores, positive above the axis, negative below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs
from .scorefile import ScoreFile
from .sequences import parse_coordinates

ALPHABET = list("ACGT")
LOGO_FORMATS = (".png", ".svg", ".pdf")


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


def draw_logos(data: dict, indices: list[int], out, hypothetical=False, start=None, end=None,
               around_max=None, motifs: pd.DataFrame | None = None, width_per_bp=0.18, dpi=150, inputs=()):
    """Draw one logo row per sequence in ``indices`` and save by the extension of ``out`` (png/svg/pdf).

    inputs: the files the drawing was read from, which ``out`` may not overwrite.
    """
    import matplotlib

    matplotlib.use("Agg")
    import logomaker
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"{out}: logo output must end in .png, .svg or .pdf")
    key = "hypothetical" if hypothetical else "contrib"
    length = data[key].shape[1]
    windows = []
    for i in indices:
        if around_max:
            windows.append(strongest_window(data["contrib"][i].sum(-1), around_max))
        else:
            s, e = start or 0, end if end is not None else length
            if not 0 <= s < e <= length:
                raise SeqliftError(f"window {s}-{e} is outside the sequence (0-{length})")
            windows.append((s, e))
    span = max(e - s for s, e in windows)
    fig, axes = plt.subplots(len(indices), 1, figsize=(max(6.0, span * width_per_bp), 2.2 * len(indices)),
                             squeeze=False)
    attrs = data["attrs"]
    for ax, i, (s, e) in zip(axes[:, 0], indices, windows):
        name = str(data["names"][i])
        coords = parse_coordinates(name)
        offset = coords[1] if coords else 0
        frame = pd.DataFrame(data[key][i, s:e], columns=ALPHABET, index=np.arange(s, e) + offset)
        logomaker.Logo(frame, ax=ax, color_scheme="classic", flip_below=False)
        ax.axhline(0, color="black", linewidth=0.5)
        if motifs is not None:
            for row in motifs[motifs["name"] == name].itertuples():
                if row.end > s and row.start < e:
                    ax.axvspan(max(row.start, s) + offset - 0.5, min(row.end, e) + offset - 0.5,
                               color="gold" if row.motif == "GATA1" else "lightskyblue", alpha=0.3, zorder=0)
                    ax.text(max(row.start, s) + offset, ax.get_ylim()[1], row.motif, fontsize=7, va="top")
        label = "hypothetical contribution" if hypothetical else "contribution"
        ax.set_ylabel(label, fontsize=8)
        where = f"{coords[0]} (genome coordinates)" if coords else "position"
        ax.set_xlabel(where, fontsize=8)
        ax.set_title(f"{name} · task {data['task']} · {attrs.get('method', '')} ({attrs.get('rule', '')})", fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    try:
        with Outputs(inputs) as outputs:
            fig.savefig(outputs.file(out), dpi=dpi, format=out.suffix.lower()[1:])
    finally:
        plt.close(fig)
    return out


def draw_logo_file(scores_path, out, task=None, name=None, top=None, hypothetical=False, start=None, end=None,
                   around_max=None, motifs_path=None, inputs=()):
    """``seqlift logo``: draw the chosen sequences of a score file, reading only what it needs."""
    if Path(out).suffix.lower() not in LOGO_FORMATS:
        raise SeqliftError(f"{out}: logo output must end in .png, .svg or .pdf")
    inputs = [scores_path, motifs_path, *inputs]  # what ``out`` may not overwrite
    Outputs(inputs).check_file(out)
    motifs = None
    if motifs_path:
        if not Path(motifs_path).exists():
            raise SeqliftError(f"{motifs_path}: motifs file not found")
        motifs = pd.read_csv(motifs_path, sep="\t")
        missing = {"name", "motif", "start", "end"} - set(motifs.columns)
        if missing:
            raise SeqliftError(f"{motifs_path}: not a seqlift simulate motifs.tsv (missing {', '.join(sorted(missing))})")
    with ScoreFile(scores_path, task) as scores:
        totals = None
        if name is None:
            totals = np.concatenate([c.reshape(len(c), -1).sum(1) for _, c in scores.chunks("contrib")])
        chosen = choose_sequences(scores.names, totals, name, top)
        data = {"names": scores.names[chosen], "attrs": scores.attrs, "task": scores.task,
                "contrib": scores.rows("contrib", chosen), "hypothetical": scores.rows("hypothetical", chosen)}
    return draw_logos(data, list(range(len(chosen))), out, hypothetical, start, end, around_max, motifs,
                      inputs=inputs)
