"""What ``seqlift score`` writes: ``ScoreOutputs`` (``--out``, ``--modisco``, ``--logo``, ``--bigwig``,
``--chrom-sizes``), parsed and checked here. ``Outputs`` (seqlift.outputs) then owns every file while it is
written; ``seqlift variants`` has its own (``effects.VariantOutputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .errors import SeqliftError
from .outputs import Outputs
from .plots import LOGO_FORMATS, is_logo
from .rowfile import is_summary, summary_path
from .scorefile import is_modisco_input, is_score_file, modisco_paths


@dataclass(frozen=True)
class ScoreOutputs:
    """The score file ``out`` (its TSV summary beside it) and what else a run writes: ``modisco`` (a prefix of
    TF-MoDISco's inputs), ``logo`` (an image of the top sequence), ``bigwig`` (a track, with ``chrom_sizes``)."""

    out: Path | str
    modisco: str | None = None
    logo: str | None = None
    bigwig: str | None = None
    chrom_sizes: str | None = None

    @classmethod
    def parse(cls, out, modisco=None, logo=None, bigwig=None, chrom_sizes=None) -> ScoreOutputs:
        """The options as given; their forms checked before anything is read."""
        if logo and Path(logo).suffix.lower() not in LOGO_FORMATS:
            raise SeqliftError(f"--logo {logo}: must end in {', '.join(LOGO_FORMATS)}")
        if chrom_sizes and not bigwig:
            raise SeqliftError("--chrom-sizes applies to --bigwig only")
        return cls(out, modisco, logo, bigwig, chrom_sizes)  # as given: Outputs.check_file says what is wrong

    @property
    def summary(self) -> Path:
        return summary_path(self.out)

    def inputs(self) -> list[str]:
        """Files the outputs read (the chromosome sizes)."""
        return [self.chrom_sizes] if self.chrom_sizes else []

    def check(self, outputs: Outputs, tasks=(0,)):
        """Every destination, before any work (again once the tasks are known: they name modisco's files). A file
        already at a destination is replaced only when seqlift wrote it (a rerun); any other is refused."""
        paths = [(self.out, "--out", is_score_file), (self.summary, "--out", is_summary),
                 (self.logo, "--logo", is_logo), (self.bigwig, "--bigwig", None)]
        if self.modisco:
            paths += [(p, "--modisco", is_modisco_input) for p in modisco_paths(self.modisco, tasks)]
        seen = {}
        for path, option, ours in paths:
            if path is None:
                continue
            path = outputs.check_file(path, option, ours)
            if path.resolve() in seen:
                raise SeqliftError(f"{option} {path}: is also {seen[path.resolve()]}'s file; give different names")
            seen[path.resolve()] = option

    def for_head(self, out: Path, label: str) -> ScoreOutputs:
        """One head's outputs when a run scores several (``pipeline.prepare_heads``): its score file ``out``, and
        ``PREFIX.LABEL`` and ``NAME.LABEL.png`` for the others."""
        def labelled(given):
            return str(Path(given).with_name(f"{Path(given).stem}.{label}{Path(given).suffix}")) if given else None

        return replace(self, out=Path(out), modisco=f"{self.modisco}.{label}" if self.modisco else None,
                       logo=labelled(self.logo), bigwig=labelled(self.bigwig))
