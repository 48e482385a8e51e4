"""The ``seqlift score`` job as a library call: inputs → references → engine → score files, in chunks.

Memory is set by the chunk size, not by the number of sequences: records are read, encoded,
scored and appended to the output chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, _backend
from . import references as refs_mod
from . import sequences as seqs
from .errors import SeqliftError
from .scorefile import ScoreWriter, sha256
from .scoring import ReferenceSpec, explained_targets, explainer_for_sequences, score_one_hot

# Methods whose scores should sum to t(x) − t(ref): their convergence deltas are checked.
COMPLETE_METHODS = ("deeplift", "integrated-gradients")
# Positions (sequence × reference × bp) per chunk: ~4M keeps a chunk's references near 64 MB.
POSITIONS_PER_CHUNK = 1 << 22


@dataclass
class Plan:
    n_sequences: int
    length: int
    tasks: list[int]


@dataclass
class Result:
    out: Path
    summary: Path
    n: int
    worst: tuple | None = None  # (relative delta, name, task) of the worst sequence
    n_over: dict = field(default_factory=dict)

    def worst_delta(self, threshold: float) -> str | None:
        """A one-line warning when convergence deltas exceed ``threshold`` (relative), else None."""
        if self.worst is None:
            return None
        count = self.n_over.get(threshold, 0)
        if count == 0:
            return None
        rel, name, task = self.worst
        return (f"{count} of {self.n} sequence(s) have a convergence delta above {threshold:g} (relative); "
                f"worst: '{name}' (task {task}), {rel:.3g}")


@dataclass
class ScoreJob:
    model: str
    input: str
    out: Path
    genome: str | None = None
    method: str = "deeplift"
    rule: str = "rescale"
    reference: str = "shuffle"
    n_refs: int = 20
    refs_per_input: int | None = None
    seed: int = 0
    background: str | None = None
    normalize: bool = True
    batch_size: int | None = None
    modisco: str | None = None
    device: str | None = None
    delta_thresholds: tuple = (1e-3,)
    output: str | None = None
    target: str = "logit"
    rc_average: bool = False

    def prepare(self, choose_tasks: Callable[[int], list[int]]) -> Plan:
        """Load the model and check every input before any work starts."""
        if self.device == "gpu" and not _backend.gpu_available():
            raise SeqliftError("--device gpu: the Keras backend sees no GPU")
        self.explainer = explainer_for_sequences(self.model, self.rule, self.normalize, self.device, self.output)
        self.length = int(self.explainer.graph.input_shape[0])
        self.tasks = choose_tasks(self.explainer.n_outputs)
        explained_targets(self.explainer, self.tasks, self.target)  # --task with --target sum/profile is an error
        self._open_input()
        self.spec = self._reference_spec()
        return Plan(self.n_sequences, self.length, self.tasks)

    def _open_input(self):
        path = Path(self.input)
        if not path.exists():
            raise SeqliftError(f"{path}: input file not found")
        name = path.name.lower().removesuffix(".gz")
        is_bed = name.endswith((".bed", ".narrowpeak"))
        if is_bed:
            if not self.genome:
                raise SeqliftError(f"{path}: BED input needs --genome GENOME.fa")
            sizes = seqs.fasta_lengths(self.genome)
            self.regions = seqs.read_bed_windows(path, sizes, self.length)
            self.n_sequences = len(self.regions)
            self._records = lambda: seqs.read_regions(self.genome, self.regions)
        else:
            self.n_sequences = seqs.count_fasta(path)
            self._records = lambda: seqs.read_fasta(path)

    def _reference_spec(self) -> ReferenceSpec:
        kind = self.reference
        if kind == "shuffle":
            return ReferenceSpec("shuffle", n_refs=self.n_refs, seed=self.seed)
        if kind == "zeros":
            return ReferenceSpec("zeros")
        if kind == "frequency":
            if self.background is not None:
                background = refs_mod.parse_background(self.background)
            else:  # the composition of the whole input, so chunking cannot change it
                counts = np.zeros(4)
                for names, one_hot in self._chunks(1024):
                    counts += one_hot.reshape(-1, 4).sum(0)
                background = (counts / max(counts.sum(), 1)).astype(np.float32)
            return ReferenceSpec("frequency", background=background)
        if self.background is not None:
            raise SeqliftError("--background applies to --reference frequency only")
        return self._fasta_references(Path(kind))

    def _fasta_references(self, path: Path) -> ReferenceSpec:
        if not path.exists():
            raise SeqliftError(f"--reference {path}: not shuffle, frequency, zeros or an existing FASTA file")
        _, refs = seqs.encode_records(seqs.read_fasta(path), self.length, path)
        n, count = self.n_sequences, len(refs)
        if self.refs_per_input:
            if count != n * self.refs_per_input:
                raise SeqliftError(f"{path}: {count} reference records, but --refs-per-input {self.refs_per_input} "
                                   f"with {n} inputs needs {n * self.refs_per_input}")
            refs = refs.reshape(n, self.refs_per_input, self.length, 4)
        return ReferenceSpec("given", given=refs)

    def _chunks(self, size: int):
        """``(names, one_hot (n, L, 4))`` for successive chunks of at most ``size`` records."""
        batch = []
        for record in self._records():
            batch.append(record)
            if len(batch) == size:
                yield seqs.encode_records(batch, self.length, self.input)
                batch = []
        if batch:
            yield seqs.encode_records(batch, self.length, self.input)

    def attributes(self) -> dict:
        n_refs = {"shuffle": self.n_refs, "frequency": 1, "zeros": 1}.get(self.reference)
        if n_refs is None:
            given = self.spec.given
            n_refs = given.shape[1] if given.ndim == 4 else given.shape[0]
        return {
            "seqlift_version": __version__,
            "backend": _backend.NAME,
            "model": str(Path(self.model).resolve()),
            "model_sha256": sha256(self.model),
            "input": str(Path(self.input).resolve()),
            "tasks": np.asarray(self.tasks, dtype=np.int64),
            "method": self.method,
            "rule": self.rule,
            "reference": self.reference,
            "n_refs": n_refs,
            "seed": self.seed,
            "normalization": ",".join(self.explainer.normalized) if self.explainer.normalized else "none",
            "final_activation": self.explainer.graph.final_activation or "none",
            "output": str(self.output) if self.output is not None else "",
            "target": self.target,
            "rc_average": bool(self.rc_average),
            "background": self.spec.background if self.spec.background is not None else np.zeros(0, np.float32),
        }

    def run(self, progress: Callable[[int], None] = lambda n: None) -> Result:
        """Score everything; on any failure or interruption no output file is left behind."""
        out = Path(self.out)
        summary = out.with_suffix(".tsv") if out.suffix == ".h5" else Path(f"{out}.tsv")
        writer = ScoreWriter(out, self.length, self.tasks, self.attributes(), summary=summary,
                             modisco=self.modisco, n_expected=self.n_sequences)
        n_refs = self.n_refs if self.reference == "shuffle" else 1
        chunk = max(1, POSITIONS_PER_CHUNK // (self.length * n_refs))
        worst, n_over = None, {t: 0 for t in self.delta_thresholds}
        try:
            start = 0
            for names, one_hot in self._chunks(chunk):
                scores = score_one_hot(self.explainer, one_hot, self.tasks, self.method, self.spec,
                                       start_index=start, names=names, batch_size=self.batch_size,
                                       target=self.target, rc_average=self.rc_average)
                writer.append(names, one_hot, scores)
                if self.method in COMPLETE_METHODS:
                    scale = np.maximum(1.0, np.maximum(np.abs(scores.prediction), np.abs(scores.reference_prediction)))
                    relative = scores.delta / scale
                    for t in n_over:
                        n_over[t] += int((relative > t).any(axis=1).sum())
                    i, j = np.unravel_index(np.argmax(relative), relative.shape)
                    if worst is None or relative[i, j] > worst[0]:
                        worst = (float(relative[i, j]), names[i], self.tasks[j])
                start += len(names)
                progress(len(names))
            writer.close()
        except BaseException:
            writer.abort()
            raise
        return Result(out=out, summary=summary, n=start, worst=worst, n_over=n_over)
