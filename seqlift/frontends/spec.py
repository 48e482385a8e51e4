"""``ModelSpec``: the model a run explains and how to read it, and the values of its other inputs, parsed and
checked here (``seqlift score`` and ``seqlift variants`` share it). Nothing here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SeqliftError
from ..sequences import EXTRA_FLIPS
from . import describe, for_file, model_files, split_function

LAYOUTS = ("NCL", "NLC")


@dataclass(frozen=True)
class ModelSpec:
    """The model and how it is read, and its other inputs, held fixed (``extra``, ``extra_rc``)."""

    given: object  # a model file, FILE.py:FUNCTION, or a loaded model object
    weights: str | None = None  # --weights: for ARCH.json, or a torch module's state dict
    custom_objects: str | None = None  # --custom-objects: a Python file of Keras layer classes
    layout: str | None = None  # a torch model's one-hot layout: NCL or NLC
    length: int | None = None  # a torch model's window, which its module does not fix
    allow_pickle: bool = False  # read a whole pickled torch model (runs code from the file)
    input: str | None = None  # the one-hot input, of several
    output: str | None = None  # the explained output, of several
    normalize: bool = True  # the first convolution's weights mean-normalized per column
    extra: tuple = ()  # NAME=FILE.npy: another input's values
    extra_rc: tuple = ()  # NAME=reverse|swap|both|FILE.npy: how that input flips with --rc-average

    @classmethod
    def parse(cls, model, weights=None, custom_objects=None, layout=None, length=None, allow_pickle=False,
              model_input=None, output=None, normalize=True, extra=(), extra_rc=()) -> ModelSpec:
        """The options as given; their forms checked without reading a file (``read_extra`` reads them)."""
        if layout is not None and layout not in LAYOUTS:
            raise SeqliftError(f"--layout {layout}: choose {' or '.join(LAYOUTS)}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise SeqliftError(f"--length {length}: must be a whole number of bases, at least 1")
        extra, extra_rc = tuple(extra or ()), tuple(extra_rc or ())
        _check_pairs(extra, "--extra", "NAME=FILE.npy")
        _check_pairs(extra_rc, "--extra-rc", "NAME=reverse, NAME=swap, NAME=both or NAME=FILE.npy")
        for item in extra_rc:
            flip = item.partition("=")[2]
            if flip not in EXTRA_FLIPS and not (flip.endswith(".npy") or Path(flip).exists()):
                raise SeqliftError(f"--extra-rc {item}: '{flip}' is not reverse, swap, both or an existing .npy file")
        model = str(model) if isinstance(model, Path) else model
        return cls(model, weights, custom_objects, layout, length, bool(allow_pickle),
                   None if model_input is None else str(model_input), None if output is None else str(output),
                   bool(normalize), extra, extra_rc)

    def files(self) -> list[str]:
        """Every file reading the model and its inputs touches: no output may be one of them."""
        files = model_files(self.given, self.weights, self.custom_objects)
        files += [item.partition("=")[2] for item in self.extra]
        return files + [flip for flip in (item.partition("=")[2] for item in self.extra_rc) if flip not in EXTRA_FLIPS]

    def settings(self, rule: str, device: str | None, sequences=None) -> dict:
        """What builds the run's explainer (``scoring.explainer_for_sequences``), here and on a Ray worker.
        sequences: the input file, whose first FASTA record gives a torch model its length without ``length``."""
        settings = dict(model=self.given, rule=rule, normalize=self.normalize, device=device, output=self.output,
                        input=self.input, weights=self.weights, custom_objects=self.custom_objects,
                        layout=self.layout, allow_pickle=self.allow_pickle)
        front_end = for_file(self.given) if not split_function(self.given) else None
        if front_end is None or not front_end.declares_shapes:
            settings.update(self._capture_shapes(sequences))
        return settings

    def _capture_shapes(self, sequences) -> dict:
        """What capturing a torch model needs to know that its files do not say: the sequences' length
        (``length``, else the first FASTA record's) and the per-sample shapes of the ``extra`` arrays."""
        from .. import sequences as seqs

        shapes = {}
        for item in self.extra:
            name, _, path = item.partition("=")
            try:
                value = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                continue  # read_extra says what is wrong with it
            shapes[name] = tuple(value.shape[1:])
        length = self.length
        if length is None and sequences is not None and Path(sequences).is_file() and not seqs.is_bed(sequences):
            try:
                length = len(next(iter(seqs.read_fasta(sequences))).sequence)
            except (SeqliftError, StopIteration):
                pass  # the sequence source says what is wrong with it
        return {"input_length": length, "extra_shapes": shapes}

    def check_length(self, length: int):
        """``length`` given for a model that fixes its own: they must agree."""
        if self.length is not None and self.length != length:
            raise SeqliftError(f"--length {self.length}: the model takes {length} bp; leave --length out (it is for "
                               "torch models, whose length the module does not fix)")

    def read_extra(self, explainer, n_sequences: int, option="--extra", items=None) -> dict:
        """``{input name: array}`` from ``extra`` (memory-mapped), checked against the model's inputs."""
        values = {}
        for item in self.extra if items is None else items:
            name, _, path = item.partition("=")
            if name in values:
                raise SeqliftError(f"{option} {item}: input '{name}' is given twice")
            if not Path(path).is_file():
                raise SeqliftError(f"{option} {item}: {path}: file not found")
            try:
                value = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise SeqliftError(f"{option} {item}: {path}: not a NumPy .npy array ({str(exc)[:120]})") from None
            try:
                explainer.check_extra({name: value}, n_sequences)
            except SeqliftError as exc:
                raise SeqliftError(f"{option} {item}: {exc}") from None
            values[name] = value
        return values

    def read_extra_rc(self, explainer, n_sequences: int, extra: dict, rc_average: bool) -> dict:
        """``{input name: flip name or array}`` from ``extra_rc``, checked (``scoring.flip_extra``) before any
        work. extra: ``read_extra``'s values."""
        flips, files = {}, []
        for item in self.extra_rc:
            name, _, flip = item.partition("=")
            if name in flips or name in [f.partition("=")[0] for f in files]:
                raise SeqliftError(f"--extra-rc {item}: input '{name}' is given twice")
            if flip in EXTRA_FLIPS:
                flips[name] = flip
            else:
                files.append(item)
        flips.update(self.read_extra(explainer, n_sequences, "--extra-rc", files))
        if rc_average:  # checks every flip (views of the memory-mapped files: nothing is read)
            from ..scoring import flip_extra

            flip_extra(explainer, extra, flips)
        return flips

    def attributes(self, explainer) -> dict:
        """The score file's attributes for the model (``explainer``: the one built from it)."""
        from ..rowfile import sha256

        given = dict(item.partition("=")[::2] for item in self.extra)
        extra = "; ".join(f"{name}={Path(given[name]).resolve() if name in given else 'zeros'}"
                          for name, _ in explainer.graph.fixed_inputs)
        flips = []
        for item in self.extra_rc:
            name, _, flip = item.partition("=")
            flips.append(f"{name}={flip if flip in EXTRA_FLIPS else Path(flip).resolve()}")
        return {
            "model": describe(self.given),
            "model_sha256": sha256(model_files(self.given)[0]),
            "weights": str(Path(self.weights).resolve()) if self.weights else "",
            "weights_sha256": sha256(self.weights) if self.weights else "",
            "custom_objects": str(Path(self.custom_objects).resolve()) if self.custom_objects else "",
            "model_input": explainer.graph.input_name,
            "extra_inputs": extra,
            "extra_rc": "; ".join(flips),
            "normalization": ",".join(explainer.normalized) if explainer.normalized else "none",
            "final_activation": explainer.graph.final_activation or "none",
            "output": explainer.graph.output_name or (self.output if self.output is not None else ""),
        }


def _check_pairs(items, option: str, expected: str):
    """Each of ``items`` is ``NAME=VALUE``."""
    for item in items:
        name, _, value = str(item).partition("=")
        if not name or not value:
            raise SeqliftError(f"{option} {item}: expected {expected}")
