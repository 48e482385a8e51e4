"""What ``seqlift score`` writes: ``ScoreOutputs`` (``--out`` and the extra outputs), parsed and checked here.

Each extra output is one ``ExtraOutput`` class in the ``EXTRA_OUTPUTS`` registry: TF-MoDISco-lite's inputs
(``--modisco``, streamed chunk by chunk), a logo (``--logo``) and a bigWig track (``--bigwig``, drawn from the
finished score file). A new format is one class registered with ``register_output`` and its test: its keyword is
``build_request``'s and ``--KEYWORD`` on the command line (the CLI builds its options from the registry when it is
imported). ``Outputs`` (seqlift.outputs) then owns every file while it is written; ``seqlift variants`` has its own
(``effects.VariantOutputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from .errors import SeqliftError
from .outputs import Outputs
from .plots import LOGO_FORMATS, is_logo
from .rowfile import is_summary, summary_path
from .scorefile import ModiscoInputs, is_modisco_input, is_score_file, modisco_paths


class ExtraOutput:
    """One extra output of a score run, given as ``--KEYWORD VALUE`` (``keyword=VALUE`` in ``build_request``).

    A subclass says what the value names (``paths``), which file already there a rerun may replace (``ours``: a
    predicate, or None: never), and how it is written: ``stream`` (written chunk by chunk with the score file) or
    ``finish`` (made from the finished score file). ``check`` refuses a malformed value before anything is read.
    ``plan`` is always the run's ``pipeline.ScorePlan`` (the pipeline sits above this module).
    """

    keyword: str = ""
    help: str = ""
    ours: Callable | None = None
    names_file: bool = True  # the value is a file's path (not a prefix)

    @property
    def option(self) -> str:
        return f"--{self.keyword.replace('_', '-')}"

    def check(self, value):
        """Refuse a malformed ``value`` in one line, before anything is read."""

    def paths(self, value, tasks) -> list[Path]:
        """The files ``value`` names once the tasks are known."""
        return [Path(value)]

    def for_head(self, value, label: str):
        """The value for one head of several (``pipeline.prepare_heads``): ``NAME.LABEL.SUFFIX``."""
        return str(Path(value).with_name(f"{Path(value).stem}.{label}{Path(value).suffix}"))

    def stream(self, outputs: Outputs, value, plan):
        """A stream the ``ScoreWriter`` feeds (``write``, ``close``, ``discard``), or None."""
        return None

    def finish(self, value, score_file: Path, plan):
        """Write the output from the finished score file."""


# Extra outputs by keyword, in the order the CLI lists them.
EXTRA_OUTPUTS: dict[str, ExtraOutput] = {}


def register_output(extra: ExtraOutput) -> ExtraOutput:
    """Add ``extra`` to ``EXTRA_OUTPUTS`` (registering a keyword again replaces it)."""
    if not extra.keyword.isidentifier() or extra.keyword in ("out", "chrom_sizes"):
        raise ValueError(f"extra output keyword {extra.keyword!r}: must be a Python identifier other than out and "
                         "chrom_sizes")
    EXTRA_OUTPUTS[extra.keyword] = extra
    return extra


class Modisco(ExtraOutput):
    keyword, ours, names_file = "modisco", staticmethod(is_modisco_input), False
    help = "Also write PREFIX_ohe.npz and PREFIX_hyp.npz for `modisco motifs -s ... -a ...`."

    def paths(self, value, tasks) -> list[Path]:
        return modisco_paths(value, tasks)

    def for_head(self, value, label: str):
        return f"{value}.{label}"

    def stream(self, outputs: Outputs, value, plan):
        return ModiscoInputs(outputs, value, plan.tasks, len(plan.rows), plan.source.length)


class Logo(ExtraOutput):
    keyword, ours = "logo", staticmethod(is_logo)
    help = "Also draw a logo of the top sequence (PNG/SVG/PDF)."

    def check(self, value):
        if Path(value).suffix.lower() not in LOGO_FORMATS:
            raise SeqliftError(f"--logo {value}: must end in {', '.join(LOGO_FORMATS)}")

    def finish(self, value, score_file: Path, plan):
        from .plots import draw_logo_file

        draw_logo_file(score_file, value, task=plan.tasks[0], inputs=plan.input_paths())


class BigWig(ExtraOutput):
    keyword = "bigwig"
    help = "Also write a bigWig track (needs chrom:start-end names, or BED input; --chrom-sizes or --genome)."

    def finish(self, value, score_file: Path, plan):
        from .tracks import write_bigwig_file

        write_bigwig_file(score_file, value, chrom_sizes=plan.request.outputs.chrom_sizes, genome=plan.request.genome,
                          task=plan.tasks[0], inputs=plan.input_paths())


for _extra in (Modisco(), Logo(), BigWig()):
    register_output(_extra)


@dataclass(frozen=True)
class ScoreOutputs:
    """The score file ``out`` (its TSV summary beside it), the extra outputs given (``extras``: value by keyword of
    ``EXTRA_OUTPUTS``) and ``chrom_sizes`` (for ``--bigwig``)."""

    out: Path | str
    extras: Mapping = field(default_factory=lambda: MappingProxyType({}))
    chrom_sizes: str | None = None

    @classmethod
    def keywords(cls) -> list[str]:
        """What ``parse`` takes: ``out``, ``chrom_sizes`` and every registered extra output's keyword."""
        return ["out", "chrom_sizes", *EXTRA_OUTPUTS]

    @classmethod
    def parse(cls, out, chrom_sizes=None, **extras) -> ScoreOutputs:
        """The options as given; their forms checked before anything is read."""
        unknown = [k for k in extras if k not in EXTRA_OUTPUTS]
        if unknown:
            raise TypeError(f"unknown output(s): {', '.join(unknown)}")
        given = {k: v for k, v in extras.items() if v}
        for keyword, value in given.items():
            EXTRA_OUTPUTS[keyword].check(value)
        if chrom_sizes and not given.get("bigwig"):
            raise SeqliftError("--chrom-sizes applies to --bigwig only")
        return cls(out, MappingProxyType(given), chrom_sizes)  # as given: Outputs.check_file says what is wrong

    def __getattr__(self, name):
        """An extra output's value by its keyword (``outputs.logo``), None when not given."""
        if name in EXTRA_OUTPUTS:
            return self.extras.get(name)
        raise AttributeError(name)

    @property
    def summary(self) -> Path:
        return summary_path(self.out)

    def inputs(self) -> list[str]:
        """Files the outputs read (the chromosome sizes)."""
        return [self.chrom_sizes] if self.chrom_sizes else []

    def check(self, outputs: Outputs, tasks=(0,)):
        """Every destination, before any work (again once the tasks are known: they may name files). A file
        already at a destination is replaced only when seqlift wrote it (a rerun); any other is refused."""
        paths = [(self.out, "--out", is_score_file), (self.summary, "--out", is_summary)]
        for keyword, value in self.extras.items():
            extra = EXTRA_OUTPUTS[keyword]
            paths += [(p, extra.option, extra.ours) for p in extra.paths(value, tasks)]
        seen = {}
        for path, option, ours in paths:
            path = outputs.check_file(path, option, ours)
            if path.resolve() in seen:
                raise SeqliftError(f"{option} {path}: is also {seen[path.resolve()]}'s file; give different names")
            seen[path.resolve()] = option

    def streams(self, outputs: Outputs, plan) -> list:
        """The streams of the extra outputs written chunk by chunk with the score file."""
        made = (EXTRA_OUTPUTS[k].stream(outputs, v, plan) for k, v in self.extras.items())
        return [stream for stream in made if stream is not None]

    def finish(self, plan, score_file: Path):
        """Write the extra outputs made from the finished score file."""
        for keyword, value in self.extras.items():
            EXTRA_OUTPUTS[keyword].finish(value, Path(score_file), plan)

    def for_head(self, out: Path, label: str) -> ScoreOutputs:
        """One head's outputs when a run scores several (``pipeline.prepare_heads``): its score file ``out``, and
        each extra output's value for the head (``ExtraOutput.for_head``)."""
        extras = {k: EXTRA_OUTPUTS[k].for_head(v, label) for k, v in self.extras.items()}
        return replace(self, out=Path(out), extras=MappingProxyType(extras))
