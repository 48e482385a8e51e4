"""From score files to named motifs: TF-MoDISco-lite finds the patterns, memelite's TOMTOM names them.

seqlift adds no motif-discovery code of its own: modisco-lite clusters seqlets of the hypothetical
scores into patterns, TOMTOM (memelite) matches each pattern's PWM against a MEME database, and
this module writes what a biologist reads: a table, a MEME file, logos, seqlets as BED and an
HTML report.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SeqliftError
from .outputs import Outputs
from .rowfile import write_source
from .scorefile import ScoreFile
from .sequences import ALPHABET, codes_to_string, parse_coordinates, reverse_complement

# Trim a pattern's CWM to the span whose per-position |contribution| reaches this fraction of its max.
TRIM_FRACTION = 0.3
MATCH_Q = 0.05


@dataclass
class Pattern:
    name: str  # pos_pattern_0, neg_pattern_1, ...
    sign: str
    ppm: np.ndarray  # (W, 4) probabilities
    cwm: np.ndarray  # (W, 4) mean contributions
    seqlets: list = field(default_factory=list)  # (example index, start, end, reverse-complemented)
    core: tuple = (0, 0)  # trimmed span [start, end) of the informative core
    matches: list = field(default_factory=list)  # [(motif, p, q)] best first

    @property
    def consensus(self) -> str:
        start, end = self.core
        return codes_to_string(self.ppm[start:end].argmax(1))

    def reverse_complement(self) -> Pattern:
        """The same pattern read on the other strand (each seqlet's strand flipped)."""
        width = len(self.ppm)
        return Pattern(self.name, self.sign, reverse_complement(self.ppm), reverse_complement(self.cwm),
                       [(i, start, end, not rc) for i, start, end, rc in self.seqlets],
                       (width - self.core[1], width - self.core[0]), self.matches)


def oriented(pattern: Pattern) -> Pattern:
    """``pattern`` on the strand whose consensus sorts first (AGATAA rather than TTATCT), so the same
    motif reads the same way whichever strand TF-MoDISco-lite happened to align it on; for a palindromic
    consensus, the strand whose core PPM (rounded to 1e-6, read row by row) sorts first."""
    other = pattern.reverse_complement()

    def key(p):
        return p.consensus, tuple(np.round(p.ppm[p.core[0]:p.core[1]], 6).ravel())

    return other if key(other) < key(pattern) else pattern


def trim_core(cwm: np.ndarray, fraction=TRIM_FRACTION) -> tuple[int, int]:
    """``[start, end)`` of positions whose summed |CWM| reaches ``fraction`` of the maximum."""
    strength = np.abs(cwm).sum(1)
    keep = np.flatnonzero(strength >= fraction * strength.max())
    return (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, len(cwm))


# Seqlet core and flank (bp): TF-MoDISco-lite's library defaults (``modiscolite.tfmodisco.TFMoDISco``), which
# seqlift's committed benchmark used; its ``modisco motifs`` command defaults to 20 and 5 (-z, -f).
SEQLET_WINDOW, SEQLET_FLANK = 21, 10


def seqlet_sizes(length: int, window=None, seqlet_window=None, seqlet_flank=None) -> tuple[int, int, int]:
    """``(window, seqlet core, flank)`` in bp for sequences of ``length`` bp: the central window TF-MoDISco-lite
    searches (default: the whole sequence) and its ``sliding_window_size`` and ``flank_size``. The defaults
    (``SEQLET_WINDOW``, ``SEQLET_FLANK``) shrink to fit short windows; a window longer than the sequences, or a
    seqlet core and flanks given that do not fit in the window, are refused (modisco-lite would search for
    minutes and find nothing)."""
    if window is not None and window > length:
        raise SeqliftError(f"--window {window}: longer than the score file's sequences ({length} bp); give at most "
                           f"{length}, or leave it out to search the whole sequence")
    window = window or length
    core = min(SEQLET_WINDOW, window) if seqlet_window is None else seqlet_window
    flank = min(SEQLET_FLANK, window // 4) if seqlet_flank is None else seqlet_flank
    given = [option for option, value in (("--seqlet-window", seqlet_window), ("--seqlet-flank", seqlet_flank))
             if value is not None]
    if given and core + 2 * flank > window:
        raise SeqliftError(f"{' and '.join(given)}: a seqlet of {core} bp and two flanks of {flank} bp "
                           f"({core + 2 * flank} bp) does not fit in the {window} bp searched (the sequences are "
                           f"{length} bp{f', --window {window}' if window != length else ''}); give smaller ones")
    return window, core, flank


def run_modisco(one_hot, hypothetical, max_seqlets=2000, window=None, n_leiden=2, seed=0, verbose=False,
                seqlet_window=None, seqlet_flank=None):
    """TF-MoDISco-lite on ``(N, L, 4)`` arrays; returns (positive patterns, negative patterns, window).

    window, seqlet_window, seqlet_flank: the central window searched, its ``sliding_window_size`` and
    ``flank_size`` (bp; ``seqlet_sizes`` checks them; by default 21 and 10, less for short windows).
    """
    import modiscolite

    length = one_hot.shape[1]
    window, seqlet_window, seqlet_flank = seqlet_sizes(length, window, seqlet_window, seqlet_flank)
    start = (length - window) // 2
    contrib = (hypothetical * one_hot).sum(-1)
    if not (contrib < 0).any() or not (contrib > 0).any():
        # modisco-lite fits seqlet thresholds to both signs; scores of one sign (saliency) break it
        raise SeqliftError("TF-MoDISco-lite needs scores of both signs, and these are all "
                           f"{'non-negative' if (contrib >= 0).all() else 'non-positive'}; use a signed method "
                           "(deeplift, grad-x-input, ...) for motifs")
    np.random.seed(seed)  # modisco-lite draws from numpy's global generator
    try:
        pos, neg = modiscolite.tfmodisco.TFMoDISco(
            one_hot=np.ascontiguousarray(one_hot[:, start:start + window], np.float32),
            hypothetical_contribs=np.ascontiguousarray(hypothetical[:, start:start + window], np.float32),
            max_seqlets_per_metacluster=max_seqlets, sliding_window_size=seqlet_window, flank_size=seqlet_flank,
            target_seqlet_fdr=0.05, n_leiden_runs=n_leiden, verbose=verbose)
    except ValueError as exc:  # its seqlet thresholds cannot be fitted when the scores carry too little signal
        raise SeqliftError(f"TF-MoDISco-lite could not separate seqlets from the background in these scores "
                           f"({str(exc)[:100]}); score more sequences or check the model") from None
    return pos or [], neg or [], window, start


def to_patterns(pos, neg, offset) -> list[Pattern]:
    """modisco-lite's patterns as ``Pattern``s, each ``oriented``, with seqlet positions shifted by ``offset``
    (the start of the window modisco-lite searched) into sequence coordinates."""
    patterns = []
    for sign, found in (("pos", pos), ("neg", neg)):
        for i, p in enumerate(found):
            seqlets = [(s.example_idx, s.start + offset, s.end + offset, bool(s.is_revcomp)) for s in p.seqlets]
            cwm = np.asarray(p.contrib_scores)
            patterns.append(oriented(Pattern(f"{sign}_pattern_{i}", sign, np.asarray(p.sequence), cwm, seqlets,
                                             trim_core(cwm))))
    return patterns


def _results_size(patterns) -> int:
    """Bytes modisco-lite's ``save_hdf5`` writes for ``patterns`` (at most): each pattern's and each seqlet's three
    (W, 4) arrays, and again for its sub-patterns, which hold the same seqlets."""
    return sum(2 * (3 * np.asarray(p.sequence).nbytes * (len(p.seqlets) + 1) + 32 * len(p.seqlets)) for p in patterns)


def read_motif_database(database, option="--motif-db") -> dict:
    """Motifs of a MEME file, ``{name: (4, w) PWM}``; anything else is a one-line error naming ``option`` and the
    file: a motif of width 0, a probability below 0, a name used twice."""
    from memelite.io import read_meme

    database = Path(database)
    where = f"{option} {database}"
    if not database.exists():
        raise SeqliftError(f"{where}: motif database not found")
    try:
        text = database.read_text(errors="replace")
    except OSError as exc:
        raise SeqliftError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    named = []
    for line in text.splitlines():
        if line.startswith("MOTIF") and len(line.split()) > 1:
            named.append(line.split()[1])
        width = re.search(r"letter-probability matrix:.*\bw=\s*(\d+)", line)
        if width and int(width.group(1)) == 0:  # read_meme fails on it with a bare numpy IndexError
            raise SeqliftError(f"{where}: motif '{named[-1] if named else '?'}' has width 0 (w= 0); give its "
                               "probability rows or leave it out")
    try:
        targets = read_meme(str(database))
    except Exception as exc:  # noqa: BLE001 - any parse failure means it is not a MEME file
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise SeqliftError(f"{where}: not a MEME motif file ({reason})") from None
    if not targets:
        raise SeqliftError(f"{where}: no motifs in the MEME file")
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:  # read_meme keeps the last of them: one matrix would stand for both
        raise SeqliftError(f"{where}: motif name '{twice[0]}' is used by {named.count(twice[0])} motifs; "
                           "give each motif its own name")
    for name, pwm in targets.items():
        pwm = np.asarray(pwm, np.float64)
        if pwm.ndim != 2 or pwm.shape[0] != 4 or pwm.shape[1] == 0 or not np.all(np.isfinite(pwm)):
            raise SeqliftError(f"{where}: motif '{name}' is not a 4-row matrix of finite numbers")
        if (pwm < 0).any():
            raise SeqliftError(f"{where}: motif '{name}' has a probability below 0 ({pwm.min():g}); a "
                               "letter-probability matrix holds probabilities, 0 to 1")
    return targets


# ``--motif-db`` keywords: JASPAR's CORE collection as pyjaspar ships it (no download), or no naming at all.
JASPAR, NO_DATABASE = "jaspar", "none"
MOTIFS_SOURCE = "motifs_source.json"  # the score file the motifs were found in (its path and sha256)
# Every file seqlift motifs writes in its folder: with --force, those an earlier run left that this one does not
# write (the logos of a pattern it no longer finds) are removed (``Outputs.folder``'s owns).
OWNS = ("motifs.tsv", "motifs.meme", "seqlets.tsv", "seqlets.bed", "report.html", "modisco_results.h5",
        MOTIFS_SOURCE, "pos_pattern_*.cwm.png", "pos_pattern_*.pwm.png", "neg_pattern_*.cwm.png",
        "neg_pattern_*.pwm.png")
JASPAR_RELEASE = "JASPAR2024"
JASPAR_TAXON = "vertebrates"  # the default group
JASPAR_TAXA = ("vertebrates", "plants", "insects", "fungi", "nematodes", "urochordates", "all")


def jaspar_database(taxon: str = JASPAR_TAXON) -> dict:
    """JASPAR 2024 CORE's motifs of one taxonomic group (or ``all``) as ``{"NAME (MATRIX_ID)": (4, w) PWM}``,
    read from the SQLite copy pyjaspar ships: nothing is downloaded."""
    if taxon not in JASPAR_TAXA:
        raise SeqliftError(f"--jaspar-taxon {taxon}: choose one of {', '.join(JASPAR_TAXA)}")
    from pyjaspar import jaspardb

    found = jaspardb(release=JASPAR_RELEASE).fetch_motifs(collection="CORE",
                                                          tax_group=None if taxon == "all" else [taxon])
    database = {}
    for motif in found:
        counts = np.array([motif.counts[base] for base in ALPHABET], np.float64)
        database[f"{motif.name} ({motif.matrix_id})"] = counts / counts.sum(0, keepdims=True)
    return database


def check_taxon(motif_db, taxon: str | None):
    """A JASPAR taxon only goes with ``--motif-db jaspar``: with ``none`` or a MEME file it contradicts it."""
    if taxon is not None and motif_db is not None and str(motif_db) != JASPAR:
        raise SeqliftError(f"--jaspar-taxon {taxon}: chooses among JASPAR's motifs, but --motif-db is {motif_db}; "
                           "leave --jaspar-taxon out, or give --motif-db jaspar")


def motif_database(motif_db=JASPAR, taxon: str | None = None) -> tuple[dict | None, str]:
    """``(targets, label)`` TOMTOM names patterns with: ``jaspar`` (JASPAR 2024 CORE of ``taxon``, by default
    ``JASPAR_TAXON``), ``none`` (no naming: ``None``) or a MEME file (``read_motif_database``). ``label`` says
    which, for the report. A ``taxon`` with another database contradicts it: refused."""
    check_taxon(motif_db, taxon)
    if motif_db is None or str(motif_db) == NO_DATABASE:
        return None, "no database"
    if str(motif_db) == JASPAR:
        taxon = taxon or JASPAR_TAXON
        targets = jaspar_database(taxon)
        return targets, f"{JASPAR_RELEASE} CORE ({taxon}, {len(targets)} motifs, shipped by pyjaspar)"
    return read_motif_database(motif_db), str(motif_db)


def match(patterns: list[Pattern], targets: dict) -> list[Pattern]:
    """TOMTOM each pattern's trimmed PWM against ``targets`` (``read_motif_database``); best three with q-values."""
    from memelite import tomtom
    from scipy.stats import false_discovery_control

    if not patterns:
        return patterns
    names = list(targets)
    queries = [p.ppm[p.core[0]:p.core[1]].T.astype(np.float64) for p in patterns]
    p_values = tomtom(queries, [np.asarray(targets[n], np.float64) for n in names])[0]
    for pattern, row in zip(patterns, np.atleast_2d(p_values)):
        q = false_discovery_control(row, method="bh")  # Benjamini-Hochberg q-values over the database
        best = np.argsort(row)[:3]
        pattern.matches = [(names[j], float(row[j]), float(q[j])) for j in best]
    return patterns


def write_outputs(patterns: list[Pattern], outdir: Path, names, placement, length: int, task, database):
    """motifs.tsv, motifs.meme, CWM/PWM logos, seqlets.tsv, seqlets.bed (``placement``: ``genome_placement``),
    report.html."""
    rows = []
    for p in patterns:
        m = p.matches + [("", float("nan"), float("nan"))] * (3 - len(p.matches))
        rows.append({"pattern": p.name, "sign": p.sign, "n_seqlets": len(p.seqlets), "consensus": p.consensus,
                     "best_match": m[0][0], "q_value": m[0][2], "p_value": m[0][1],
                     "second_match": m[1][0], "second_q": m[1][2], "third_match": m[2][0], "third_q": m[2][2]})
    table = pd.DataFrame(rows, columns=["pattern", "sign", "n_seqlets", "consensus", "best_match", "q_value", "p_value",
                                        "second_match", "second_q", "third_match", "third_q"])
    table.to_csv(outdir / "motifs.tsv", sep="\t", index=False, float_format="%.3g")
    _meme(patterns, outdir / "motifs.meme")
    _logos(patterns, outdir)
    _seqlet_table(patterns, outdir, names)
    _seqlet_bed(patterns, outdir, placement, length)
    _report(patterns, outdir, task, database)
    return table


def _meme(patterns, path):
    """Each pattern's trimmed PPM as a MEME motif with its seqlet count as nsites (memelite's write_meme
    writes nsites= 1 for every motif; MEME tools weigh a motif by it)."""
    from modiscolite.meme_writer import MEMEWriter, MEMEWriterMotif

    motifs = [MEMEWriterMotif(p.name, p.ppm[p.core[0]:p.core[1]], len(p.seqlets), ALPHABET) for p in patterns]
    writer = MEMEWriter("5", motifs=motifs, alphabet=ALPHABET, strands="+ -",  # motifs given: its default list is
                        background_frequencies="A 0.25 C 0.25 G 0.25 T 0.25")  # shared
    path.write_text(writer.get_output())  # not its write(): that turns a full disk into an IOError without errno


def _logos(patterns, outdir):
    """``NAME.cwm.png`` (contributions) and ``NAME.pwm.png`` (information content, bits) of each trimmed pattern."""
    import logomaker
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend and figures are left alone

    for p in patterns:
        start, end = p.core
        cwm = pd.DataFrame(p.cwm[start:end], columns=list(ALPHABET))
        ppm = pd.DataFrame(p.ppm[start:end], columns=list(ALPHABET))
        info = logomaker.transform_matrix(ppm, from_type="probability", to_type="information")
        for kind, frame in (("cwm", cwm), ("pwm", info)):
            fig = Figure(figsize=(max(3.0, 0.35 * len(frame)), 1.8))
            ax = fig.subplots()
            logomaker.Logo(frame, ax=ax, color_scheme="classic")
            ax.set_title(f"{p.name} {kind.upper()} ({len(p.seqlets)} seqlets)", fontsize=8)
            ax.set_ylabel("contribution" if kind == "cwm" else "bits", fontsize=7)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            fig.tight_layout()
            fig.savefig(outdir / f"{p.name}.{kind}.png", dpi=110)


def genome_placement(names, length: int, regions=None) -> list[tuple[str, int, str]] | None:
    """``(chrom, start, strand)`` of each sequence on the genome: from a BED-scored file's ``regions``, else from
    ``chrom:start-end`` names; None when the names are not coordinates. Names whose span is not the sequence's
    ``length`` are refused (a BED of them would be shifted)."""
    if regions is not None:
        return list(regions)
    placement = []
    for name in names:
        coords = parse_coordinates(str(name))
        if coords is None:
            return None
        chrom, start, end = coords
        if end - start != length:
            raise SeqliftError(f"record '{name}': its name spans {end - start} bp but the sequence has {length}; "
                               "seqlets.bed would be misplaced: rename the records, or score them with their "
                               "true coordinates")
        placement.append((chrom, start, "+"))
    return placement


def on_plus_strand(place: tuple[str, int, str], start: int, end: int, revcomp: bool, length: int):
    """``(chrom, start, end, strand)`` on the genome of the span ``[start, end)`` of a scored sequence placed at
    ``place`` (``genome_placement``'s ``(chrom, window start, strand)``); a sequence scored on the minus strand is
    read backwards, so its span is mirrored and its strand flipped. ``revcomp``: the span reads the motif's
    reverse complement in the scored sequence."""
    chrom, offset, strand = place
    if strand == "-":
        start, end, revcomp = length - end, length - start, not revcomp
    return chrom, offset + start, offset + end, "-" if revcomp else "+"


def _seqlet_table(patterns, outdir, names):
    """seqlets.tsv: every seqlet of every pattern in its scored sequence's coordinates (0-based, end exclusive;
    strand '-' where the pattern matches the reverse complement), for the viewer and for scripts."""
    rows = [(p.name, example, str(names[example]), start, end, "-" if revcomp else "+")
            for p in patterns for example, start, end, revcomp in p.seqlets]
    pd.DataFrame(rows, columns=["pattern", "index", "name", "start", "end", "strand"]).to_csv(
        outdir / "seqlets.tsv", sep="\t", index=False)


def _seqlet_bed(patterns, outdir, placement, length: int):
    """seqlets.bed (BED6, sorted) on the genome, from ``genome_placement`` (nothing when it is None). A seqlet of
    a sequence scored on the minus strand is mapped back onto plus-strand coordinates, its strand flipped."""
    # Not modisco-lite's write_bed_from_h5: it needs the peaks file (5+ columns), and put a seqlet at
    # [36025, 36074) whose sequence is [36024, 36074) (start + 1: 49 of 50 bp).
    if placement is None:
        return
    lines = []
    for p in patterns:
        for example, start, end, revcomp in p.seqlets:
            chrom, start, end, strand = on_plus_strand(placement[example], start, end, revcomp, length)
            lines.append((chrom, start, end, p.name, strand))
    lines.sort()
    with open(outdir / "seqlets.bed", "w") as handle:
        for chrom, start, end, name, strand in lines:
            handle.write(f"{chrom}\t{start}\t{end}\t{name}\t0\t{strand}\n")


def _inline_png(path: Path) -> str:
    """An ``<img>`` carrying the PNG itself, so report.html stays whole when copied or mailed alone."""
    data = base64.b64encode(path.read_bytes()).decode("ascii") if path.exists() else ""
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(path.name)}'>"


def _report(patterns, outdir, task, database):
    """report.html: one self-contained page (logos inline) with each pattern's consensus and TOMTOM q-values."""
    # Not modisco-lite's reports, measured on the shipped example's 2 patterns: its descriptive report took
    # 17.7 s for 1.8 MB plus 40 image files (and an IndexError when asked for more matches than the database
    # holds), its simple one links 8 PNGs outside the page; this one is 77 kB, one file, with q-values.
    rows = []
    for p in patterns:
        matches = "<br>".join(f"{html.escape(n)} (q = {q:.2g})" for n, _, q in p.matches) or "none"
        rows.append(f"<tr><td>{p.name}</td><td>{len(p.seqlets)}</td><td><code>{p.consensus}</code></td>"
                    f"<td>{_inline_png(outdir / f'{p.name}.cwm.png')}</td><td>{_inline_png(outdir / f'{p.name}.pwm.png')}</td>"
                    f"<td>{matches}</td></tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>seqlift motifs</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px;vertical-align:middle}}img{{height:90px}}</style>
</head><body><h1>Motifs (task {task})</h1>
<p>TF-MoDISco-lite patterns from the hypothetical contributions, matched with TOMTOM against
<code>{html.escape(str(database)) if database else 'no database'}</code>. CWM: contribution-weight matrix trimmed to its informative
core; PWM: information content of the seqlets' bases.</p>
<table><tr><th>pattern</th><th>seqlets</th><th>consensus</th><th>CWM</th><th>PWM</th><th>best matches</th></tr>
{''.join(rows) or '<tr><td colspan=6>no patterns found</td></tr>'}
</table></body></html>"""
    (outdir / "report.html").write_text(page)


def discover_motifs(scores_path, outdir, task=None, motif_db=JASPAR, max_seqlets=2000, window=None, n_leiden=2,
                    seed=0, verbose=False, force=False, started=lambda: None, seqlet_window=None, seqlet_flank=None,
                    jaspar_taxon=None):
    """``seqlift motifs``: TF-MoDISco-lite + TOMTOM on a score file; writes everything into ``outdir``.

    The folder is built under a temporary name and its files moved into ``outdir`` at the end. An
    existing non-empty ``outdir`` is refused unless ``force``, and even then only the files written
    here are replaced. ``started()`` is called once every input has been checked, before the long part.
    motif_db: what TOMTOM names the patterns with (``motif_database``): ``jaspar`` (JASPAR 2024 CORE of
    ``jaspar_taxon``, shipped by pyjaspar), a MEME file, or ``none`` (patterns written unnamed: empty ``best_match``).
    seqlet_window, seqlet_flank: ``run_modisco``'s. Returns the motif table.
    """
    from .references import check_seed

    check_seed(seed)
    check_taxon(motif_db, jaspar_taxon)
    database_file = None if motif_db is None or str(motif_db) in (JASPAR, NO_DATABASE) else motif_db
    outputs = Outputs([scores_path, database_file])
    outputs.check_folder(outdir, force)
    with ScoreFile(scores_path, task) as scores:  # modisco-lite takes whole arrays
        seqlet_sizes(scores.length, window, seqlet_window, seqlet_flank)  # before minutes of reading and searching
        for _ in scores.chunks("contrib"):  # not modisco-lite's input, but NaN there means a damaged file all the same
            pass
        index = np.arange(scores.n)
        data = {"names": scores.names, "task": scores.task, "one_hot": scores.rows("one_hot", index),
                "hypothetical": scores.rows("hypothetical", index)}
        placement = genome_placement(scores.names, scores.length, scores.regions())
    names = data["names"]
    targets, database = motif_database(motif_db, jaspar_taxon)
    with outputs:
        tmp = outputs.folder(outdir, force, owns=OWNS)
        started()
        pos, neg, window, offset = run_modisco(data["one_hot"], data["hypothetical"], max_seqlets, window, n_leiden, seed,
                                               verbose, seqlet_window, seqlet_flank)
        import modiscolite

        outputs.ensure_room(tmp, _results_size(pos + neg))  # HDF5 crashes on a failed write
        modiscolite.io.save_hdf5(str(tmp / "modisco_results.h5"), pos, neg, window)
        patterns = to_patterns(pos, neg, offset)
        if targets is not None:
            match(patterns, targets)
        write_source(tmp, MOTIFS_SOURCE, scores_path)
        table = write_outputs(patterns, tmp, names, placement, data["one_hot"].shape[1], data["task"],
                              database if targets is not None else None)
    return table


def read_seqlets(motifs_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(motifs, seqlets)`` of a ``seqlift motifs`` folder: motifs.tsv, and seqlets.tsv (pattern, sequence
    index and name, start, end, strand in the scored sequence's coordinates)."""
    folder = Path(motifs_dir)
    for name in ("motifs.tsv", "seqlets.tsv"):
        if not (folder / name).is_file():
            raise SeqliftError(f"--motifs {folder}: no {name}; give a folder written by seqlift motifs")
    try:
        motifs = pd.read_csv(folder / "motifs.tsv", sep="\t")
        seqlets = pd.read_csv(folder / "seqlets.tsv", sep="\t", dtype={"name": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SeqliftError(f"--motifs {folder}: unreadable motifs.tsv or seqlets.tsv ({type(exc).__name__})") from None
    for table, columns in ((motifs, ["pattern", "n_seqlets", "consensus", "best_match", "q_value"]),
                           (seqlets, ["pattern", "index", "name", "start", "end", "strand"])):
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise SeqliftError(f"--motifs {folder}: a table lacks column {missing[0]}; rerun seqlift motifs")
    return motifs, seqlets


def check_seqlets_belong(seqlets: pd.DataFrame, names, motifs_dir, scores_path, option="--motifs",
                         what="seqlets", command="seqlift motifs"):
    """A folder's ``seqlets`` (or any table with ``index`` and ``name`` columns: ``seqlift hits``' hits) must come
    from this score file: each row's ``index`` names the same sequence there (``names``: the file's)."""
    index = seqlets["index"].to_numpy(np.int64)
    bad = seqlets[(index < 0) | (index >= len(names))]
    if not len(bad):
        bad = seqlets[[names[i] != str(n) for i, n in zip(index, seqlets["name"])]]
    if len(bad):
        raise SeqliftError(f"{option} {motifs_dir}: its {what} name sequence '{bad['name'].iloc[0]}' at row "
                           f"{bad['index'].iloc[0]}, which {scores_path} does not hold there; give the folder "
                           f"{command} wrote for this file")
