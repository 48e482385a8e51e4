"""The viewer's page and what it asks for, the same whether a server answers or the data is inline.

``Viewer`` joins a file's ``Source`` with an optional ``seqlift motifs`` folder. ``page(config)`` returns the HTML
with the script and style from ``static/`` inline: ``{"mode": "server", "token": ...}`` makes it ask the server,
``{"mode": "file", "data": ...}`` carries the rows and records itself (``embedded``), so it works offline.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import SeqliftError
from ..motifs import MOTIFS_SOURCE, check_seqlets_belong, read_seqlets
from ..rowfile import check_source
from .data import Source

# In every page, so that a rerun of `seqlift view --out` knows the file is its own.
PAGE_MARK = "<!-- seqlift view -->"


class Viewer:
    """A file's ``Source``, with an optional ``seqlift motifs`` folder (seqlets, CWMs) and ``seqlift hits`` folder
    (motif instances), both checked to come from that file."""

    def __init__(self, source: Source, motifs_dir=None, hits_dir=None):
        self.source = source
        self.motifs_dir = Path(motifs_dir) if motifs_dir else None
        self._motifs = self._seqlets = self._hits = None
        try:
            if self.motifs_dir is not None:
                self._motifs, self._seqlets = read_seqlets(self.motifs_dir)
                check_seqlets_belong(self._seqlets, source.names, self.motifs_dir, source.path)
                check_source(self.motifs_dir, MOTIFS_SOURCE, source.path, "--motifs", "seqlift motifs")
            if hits_dir is not None:
                from ..hits import check_hits_belong, read_hits

                self._hits = read_hits(hits_dir)
                check_hits_belong(hits_dir, source.path)
                check_seqlets_belong(self._hits, source.names, hits_dir, source.path, "--hits", "hits", "seqlift hits")
                if (self._hits["seq_end"] > source.length).any():
                    raise SeqliftError(f"--hits {hits_dir}: it has hits past the end of {source.path}'s "
                                       f"{source.length} bp sequences; give the folder seqlift hits wrote for it")
        except BaseException:
            source.close()
            raise

    def close(self):
        self.source.close()

    # ------------------------------------------------------------------ answers
    def task_index(self, task) -> int:
        task = int(task)
        if task not in self.source.tasks:
            raise SeqliftError(f"task {task} is not in the file (tasks: {self.source.tasks})")
        return self.source.tasks.index(task)

    def meta(self, rows=None) -> dict:
        """The file's description; ``hit_motifs`` counts the hits in ``rows`` when given (a written page's)."""
        return {**self.source.meta(), "motifs": self._motifs is not None, "hit_motifs": self.hit_motifs(rows)}

    def record(self, i: int, task_index: int) -> dict:
        record = self.source.record(i, task_index)
        record["seqlets"] = self._seqlets_in(i)
        record["hits"] = self._hits_in(i)
        return record

    def hit_motifs(self, rows=None) -> list[dict]:
        """Each motif with hits (in ``rows`` when given): its name, match and number of hits (the page's filter)."""
        if self._hits is None:
            return []
        hits = self._hits if rows is None else self._hits[self._hits["index"].isin(rows)]
        counts = hits.groupby("motif", sort=False).agg(match=("match", "first"), n=("index", "size"))
        return [{"motif": m, "match": str(r.match), "n": int(r.n)} for m, r in counts.iterrows()]

    def _hits_in(self, i: int) -> list[dict]:
        if self._hits is None:
            return []
        return _hit_rows(self._hits[self._hits["index"] == i])

    def hits_of(self, motif: str, rows=None, limit: int = 1000) -> list[dict]:
        """The strongest ``limit`` hits of ``motif`` (by coefficient), in ``rows`` when given."""
        if self._hits is None:
            return []
        found = self._hits[self._hits["motif"] == motif]
        if rows is not None:
            found = found[found["index"].isin(rows)]
        return _hit_rows(found.sort_values("coefficient", ascending=False, kind="stable").head(limit))

    def _seqlets_in(self, i: int) -> list[dict]:
        if self._seqlets is None:
            return []
        rows = self._seqlets[self._seqlets["index"] == i]
        matches = dict(zip(self._motifs["pattern"], self._motifs["best_match"].fillna("")))
        return [{"pattern": r.pattern, "start": int(r.start), "end": int(r.end), "strand": r.strand,
                 "match": str(matches.get(r.pattern, ""))} for r in rows.itertuples()]

    def motifs(self) -> list[dict]:
        if self._motifs is None:
            return []
        out = []
        for r in self._motifs.itertuples():
            q = float(r.q_value) if np.isfinite(float(r.q_value)) else None
            out.append({"pattern": r.pattern, "n_seqlets": int(r.n_seqlets), "consensus": r.consensus,
                        "match": "" if not isinstance(r.best_match, str) else r.best_match, "q_value": q,
                        "has_logo": self._cwm_path(r.pattern) is not None})
        return out

    def seqlets_of(self, pattern: str) -> list[dict]:
        if self._seqlets is None:
            return []
        rows = self._seqlets[self._seqlets["pattern"] == pattern]
        return [{"i": int(r.index), "name": r.name, "start": int(r.start), "end": int(r.end), "strand": r.strand}
                for r in rows.itertuples()]

    def _cwm_path(self, pattern: str) -> Path | None:
        """The CWM logo of a pattern that motifs.tsv names (nothing else of the folder is ever served)."""
        if self._motifs is None or pattern not in set(self._motifs["pattern"]):
            return None
        path = self.motifs_dir / f"{pattern}.cwm.png"
        return path if path.is_file() else None

    def motif_png(self, pattern: str) -> bytes | None:
        path = self._cwm_path(pattern)
        return path.read_bytes() if path is not None else None

    # ------------------------------------------------------------------ a self-contained page
    def choose(self, top: int, names: list[str] | None) -> np.ndarray:
        """Rows for a self-contained page: those named (in the file's order), else the ``top`` by the first
        task's prediction (effect for variants, by size)."""
        source = self.source
        if names is not None:
            index = {name: i for i, name in enumerate(source.names)}
            missing = [name for name in names if name not in index]
            if missing:
                raise SeqliftError(f"--names: '{missing[0]}' is not in {source.path}" +
                                   (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
            return np.array(sorted({index[name] for name in names}), dtype=np.int64)
        key = "effect" if source.kind == "variants" else "prediction"
        values = source.columns[key][:, 0]
        values = np.abs(values) if key == "effect" else values
        return np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:top]

    def embedded(self, rows: np.ndarray) -> dict:
        """Everything the page needs for ``rows``: the table of each task and each record of each task."""
        tasks = range(len(self.source.tasks))
        chosen = set(rows.tolist())
        self.source.wait_totals()
        meta, motifs = self.meta(chosen), self.motifs()
        return {"meta": {**meta, "n": len(rows), "n_file": self.source.n, "totals_done": len(rows)},
                "rows": [self.source.table(t, rows) for t in tasks],
                "records": [{str(int(i)): self.record(int(i), t) for i in rows} for t in tasks],
                "motifs": motifs,
                "seqlets": {m["pattern"]: [s for s in self.seqlets_of(m["pattern"]) if s["i"] in chosen]
                            for m in motifs},
                "logos": {m["pattern"]: _data_url(self.motif_png(m["pattern"])) for m in motifs if m["has_logo"]},
                "hits": {m["motif"]: self.hits_of(m["motif"], chosen, limit=None) for m in meta["hit_motifs"]}}

    def page(self, config: dict) -> str:
        static = resources.files("seqlift.view") / "static"
        html = (static / "viewer.html").read_text(encoding="utf-8")
        script = (static / "viewer.js").read_text(encoding="utf-8")
        style = (static / "viewer.css").read_text(encoding="utf-8")
        parts = {"/*STYLE*/": style, "/*CONFIG*/": embed_json(config), "/*SCRIPT*/": script, "<!--MARK-->": PAGE_MARK}
        # one pass over the template: what a part brings in (a record named /*SCRIPT*/) is never read as a marker
        return re.sub("|".join(map(re.escape, parts)), lambda marker: parts[marker.group(0)], html)


def embed_json(value) -> str:
    """``value`` as JSON that no string in it can end or alter the ``<script>`` element holding it: ``<``, ``>``
    and ``&`` as ``\\u`` escapes (a name ``</script>`` or ``<!--<script>`` would otherwise end the element or
    open an HTML comment); ``json.dumps`` already writes every other non-ASCII character as an escape."""
    text = json.dumps(value, allow_nan=False)
    for char in "<>&":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _hit_rows(hits) -> list[dict]:
    """Hits as the page draws them: in the scored sequence's coordinates."""
    return [{"i": int(r.index), "name": str(r.name), "motif": str(r.motif), "match": str(r.match),
             "start": int(r.seq_start), "end": int(r.seq_end), "strand": str(r.seq_strand),
             "coefficient": float(r.coefficient)} for r in hits.itertuples()]


def _data_url(png: bytes | None) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png or b"").decode("ascii")
