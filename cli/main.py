"""The ``seqlift`` command: parses options, calls the library, shows progress, reports errors.

The library is imported inside each command, after ``--backend`` has set ``KERAS_BACKEND``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import click

from seqlift.destinations import EXTRA_OUTPUTS  # loads no Keras either
from seqlift.choices import TASK_TARGET
from seqlift.methods import DEEPLIFT, METHODS, RULES, TARGETS  # the registry loads no Keras: --backend still applies

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _one_line_warnings():
    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"seqlift: warning: {message}", err=True)

    warnings.showwarning = show


def _configure_backend(options):
    """Apply --backend and --device cpu before Keras is imported (neither can change afterwards)."""
    if options.get("backend"):
        os.environ["KERAS_BACKEND"] = options["backend"]
    if options.get("device") == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the one CPU switch every backend honours
        os.environ["JAX_PLATFORMS"] = "cpu"


# The signal that stopped the run (SIGTERM and SIGHUP are handled like Ctrl-C), for the exit status.
_STOPPED_BY = {"signal": signal.SIGINT}


def _stop(signum, frame):
    _STOPPED_BY["signal"] = signum
    _STOPPED_BY["stopped"] = True
    outputs = sys.modules.get("seqlift.outputs")
    if outputs is not None:  # the run's files learn of it, whatever exception a library turns it into
        outputs.note_interrupted()
    raise KeyboardInterrupt


def _interrupted():
    """Temporaries are removed by the ``with`` blocks that own them; say so and exit 128 + signal."""
    outputs = sys.modules.get("seqlift.outputs")  # not imported yet when stopped while Keras loads
    kept = outputs.remove_all_temporaries() if outputs is not None else []
    signum = _STOPPED_BY["signal"]
    if len(kept) == 1:
        said = f"{kept[0]} was kept: run the same command with --resume to continue, or remove it to start again"
    elif kept:  # one in-progress file per head (several --output/--target pairs)
        said = (f"{', '.join(map(str, kept))} were kept: run the same command with --resume to continue, or remove "
                "them to start again")
    else:
        said = "no output was written"
    click.echo(f"seqlift: interrupted ({signal.Signals(signum).name}); {said}", err=True)
    sys.exit(128 + signum)


def user_errors(fn):
    """Library errors become one line on stderr and exit code 1; Ctrl-C leaves no output behind."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            _configure_backend(kwargs)
            try:
                from seqlift.errors import SeqliftError
            except ImportError as exc:
                backend = os.environ.get("KERAS_BACKEND", "tensorflow")
                raise click.ClickException(f"cannot load the Keras backend '{backend}' ({exc}); install it or "
                                           "choose another with --backend") from None
            _one_line_warnings()
            from seqlift.outputs import silence_late_write_errors

            silence_late_write_errors()
            try:
                return fn(*args, **kwargs)
            except SeqliftError as exc:
                raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            _interrupted()
        except Exception:
            if _STOPPED_BY.get("stopped"):  # a library turned the interruption into its own error (TensorFlow)
                _interrupted()
            raise

    return wrapper


class OneLineErrors(click.Group):
    """Usage errors and library errors alike: one line on stderr (exit 2 and 1), never a traceback."""

    def main(self, *args, standalone_mode=True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = f"seqlift {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else "seqlift"
            click.echo(f"seqlift: error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"seqlift: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _interrupted()
        sys.exit(code if isinstance(code, int) else 0)


def _version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from importlib import metadata

    import seqlift  # light: Keras is not imported to answer --version

    try:
        keras_version = metadata.version("keras")
    except metadata.PackageNotFoundError:
        keras_version = "not installed"
    click.echo(f"seqlift {seqlift.__version__} (Keras {keras_version}, backend {_configured_backend()})")
    ctx.exit()


def _configured_backend() -> str:
    """The backend Keras will load: $KERAS_BACKEND, else ~/.keras/keras.json, else tensorflow (as Keras decides)."""
    import json

    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version and the Keras backend, then exit.")
def cli():
    """seqlift: which bases made your sequence model say what it said (DeepLIFT for Keras and PyTorch models)."""


class Progress:
    """A progress bar with sequences/s on stderr, silent with --quiet or when stderr is not a terminal. The rate
    counts the rows this run scored (``update``), not those a --resume took from the interrupted run (``resumed``)."""

    def __init__(self, total: int, label: str, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()
        self.start = time.perf_counter()
        self.done = 0
        self.scored = 0
        self._bar = None
        if self.enabled:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                                          item_show_func=lambda _: f"{self.rate:.1f} seq/s")
            self._bar.__enter__()

    @property
    def rate(self) -> float:
        return self.scored / max(time.perf_counter() - self.start, 1e-9)

    def update(self, n: int):
        self.scored += n
        self.resumed(n)

    def resumed(self, n: int):
        self.done += n
        if self._bar:
            self._bar.update(n, self.done)

    def close(self):
        if self._bar:
            self._bar.__exit__(None, None, None)


def _parse_tasks(values, n_outputs):
    from seqlift.errors import SeqliftError

    if not values:
        values = ("0",)
    if any(v == "all" for v in values):
        return list(range(n_outputs))
    tasks = []
    for v in values:
        for part in v.split(","):
            try:
                task = int(part)
            except ValueError:
                raise SeqliftError(f"--task {part!r} is not an output index or 'all'") from None
            if not 0 <= task < n_outputs:
                raise SeqliftError(f"--task {task} is out of range: the model has {n_outputs} outputs (0..{n_outputs - 1})")
            tasks.append(task)
    return tasks


def _options(*decorators):
    """One decorator applying click ``decorators`` in the order listed (the order --help shows them)."""

    def apply(fn):
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


# Options shared by every command that runs a model (score, variants), one group per spec of the request: each
# option's parameter is the keyword its spec's ``parse`` takes, so ``pipeline.build_request`` hands it on by name.
# --output and --target pair into heads (``pipeline.pair_heads``) and --task is read once the model is loaded.
MODEL_OPTIONS = _options(  # frontends.spec.ModelSpec
    click.option("--output", "model_output", multiple=True,
                 help="For a model with several outputs (e.g. profile and counts heads): its name or index. With "
                      "score, repeat it with one --target each to score several heads in one run, one file each "
                      "(OUT.OUTPUT.h5)."),
    click.option("--input", "model_input", default=None,
                 help="For a model with several inputs: the one-hot sequence input, by name or index.  "
                      "[default: the only input with 4 channels]"),
    click.option("--weights", type=click.Path(dir_okay=False), default=None,
                 help="Weights: for MODEL.json, Keras 2 save_weights HDF5 or Keras 3 .weights.h5; for a torch "
                      "module, a state dict (.pt read with weights_only=True, or .safetensors)."),
    click.option("--custom-objects", type=click.Path(dir_okay=False), default=None,
                 help="Python file whose Keras layer classes MODEL uses (it may call seqlift.register_layer)."),
    click.option("--layout", type=click.Choice(["NCL", "NLC"]), default=None,
                 help="A torch model's layout of its one-hot input: (N, 4, L) or (N, L, 4).  "
                      "[default: (N, 4, L) if the model captures with it, else (N, L, 4)]"),
    click.option("--length", type=click.IntRange(1), default=None,
                 help="Window length (bp) for a torch model, whose module does not fix it: needed with BED and VCF "
                      "input.  [default: the first FASTA record's]"),
    click.option("--allow-pickle", is_flag=True,
                 help="Read MODEL.pt holding a whole pickled torch model; unpickling runs code from the file."),
    click.option("--extra", multiple=True, metavar="NAME=FILE.npy",
                 help="Values of another model input, held fixed: one row per sequence, or one for all "
                      "(repeatable).  [default: zeros]"),
    click.option("--extra-rc", multiple=True, metavar="NAME=reverse|swap|both|FILE.npy",
                 help="With --rc-average: how an --extra input goes with the reverse complement: positions reversed "
                      "(strands kept, as a BPNet control track), strands swapped, both, or its values in FILE.npy "
                      "(repeatable)."),
    click.option("--no-normalize", "normalize", is_flag=True, flag_value=False, default=True,
                 help="Do not mean-normalize the first convolution per column."),
)
METHOD_OPTIONS = _options(  # methods.MethodSpec
    click.option("--task", "tasks", multiple=True, help="Output index to explain, repeatable, or 'all'.  [default: 0]"),
    click.option("--target", "target_kind", type=click.Choice(list(TARGETS)), multiple=True,
                 help="What is explained: each --task's logit, the sum of the output (a counts head), "
                 "or a profile head's softmax-weighted mean-centred logits (BPNet/chrombpnet): profile splits their "
                 "change exactly, profile-fixed-weights holds the sequence's softmax weights fixed as chrombpnet "
                 "does (its scores do not sum to the profile's change).  [default: logit]"),
    click.option("--method", type=click.Choice(list(METHODS)), default=DEEPLIFT.name, show_default=True,
                 help="; ".join(f"{m.name}: {m.description}" for m in METHODS.values()) + "."),
    click.option("--rule", type=click.Choice(RULES), default=None,
                 help=f"DeepLIFT rule; genomics = RevealCancel on dense layers, Rescale on convolutions.  "
                      f"[default: {RULES[0]}]"),
    click.option("--rc-average", is_flag=True,
                 help="Also score each reverse complement and average both strands' scores (on the forward strand)."),
    click.option("--delta-warn", type=float, default=None,
                 help="Warn when a convergence delta exceeds this, relative to max(1, |t(x)|, |t(ref)|).  "
                      "[default: 1e-3]"),
    click.option("--force", is_flag=True,
                 help="Explain more than 64 tasks (--task all on a profile head is every position and strand: "
                      "--target profile is usually what you want)."),
)
REFERENCE_OPTIONS = _options(  # references.ReferenceSpec
    click.option("--reference", default=None,
                 help="shuffle | frequency | zeros | PATH.fa of reference sequences "
                      f"({', '.join(m.name for m in METHODS.values() if m.uses_references)}).  [default: shuffle]"),
    click.option("--n-refs", type=click.IntRange(1), default=None,
                 help="Dinucleotide shuffles per sequence (--reference shuffle).  [default: 20]"),
    click.option("--refs-per-input", type=click.IntRange(1), default=None,
                 help="With --reference PATH.fa: R consecutive records per input, in input order."),
    click.option("--seed", type=int, default=None, help="Seed of the shuffles, 0 to 2^32-1.  [default: 0]"),
    click.option("--background", default=None,
                 help="A,C,G,T frequencies for --reference frequency.  [default: composition of the input]"),
)
SCALE_OPTIONS = _options(  # scale.ScaleSpec
    click.option("--batch-size", type=click.IntRange(1), default=None,
                 help="Sequences per compiled step.  [default: ~256 sequence-reference pairs on CPU, ~4096 on GPU, "
                      "fewer where memory is short]"),
    click.option("--chunk-size", type=click.IntRange(1), default=None,
                 help="Sequences per chunk, the unit of resume.  [default: about 4M positions (bp x references)]"),
    click.option("--shard", default=None, metavar="K/N",
                 help="Score only the K-th of N contiguous parts of the input (whole chunks); join with seqlift merge."),
    click.option("--resume", is_flag=True,
                 help="Continue an interrupted run from OUT.h5.partial, its last completed chunk (same settings only)."),
    click.option("--ray", default=None, metavar="local|auto|ADDRESS",
                 help="Score on a Ray cluster (pip install 'seqlift[ray]'): start one here, join the running one, or "
                      "this one."),
    click.option("--workers", type=click.IntRange(1), default=None,
                 help="Ray workers, each holding the model once.  [default: one per GPU, else one]"),
    click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True,
                 help="Where the model runs: auto takes a GPU when the backend sees one; gpu without one is an "
                      "error."),
)
EXTRA_OUTPUT_OPTIONS = _options(*(  # seqlift score's extra outputs, one option per registered format
    click.option(extra.option, extra.keyword, default=None, help=extra.help,
                 type=click.Path(dir_okay=False) if extra.names_file else None)
    for extra in EXTRA_OUTPUTS.values()))
RUN_OPTIONS = _options(  # this process: read by the CLI, not by the library
    click.option("--backend", type=click.Choice(["tensorflow", "jax", "torch"]), default=None,
                 help="Keras backend.  [default: Keras's configured backend]"),
    click.option("--quiet", is_flag=True, help="No progress bar."),
)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--genome", type=click.Path(dir_okay=False), help="Genome FASTA (indexed or indexable) for BED input.")
@click.option("--skip-invalid", is_flag=True,
              help="BED input: skip regions whose window falls off their chromosome (counted on stderr).")
@MODEL_OPTIONS
@METHOD_OPTIONS
@REFERENCE_OPTIONS
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Score file (HDF5).  [default: INPUT.seqlift.h5]")
@EXTRA_OUTPUT_OPTIONS
@click.option("--chrom-sizes", type=click.Path(dir_okay=False), default=None, help="Chromosome sizes for --bigwig.")
@SCALE_OPTIONS
@RUN_OPTIONS
@user_errors
def score(model, input, genome, skip_invalid, tasks, model_output, target_kind, out, backend, quiet, **options):
    """Score the sequences of INPUT (FASTA, or BED with --genome) with MODEL.

    MODEL: .h5 or .keras; ARCH.json with --weights (Keras 2.0 and later); FILE.py:FUNCTION, a
    function returning a keras.Model or a torch.nn.Module (its weights: --weights STATE.pt); or a
    whole pickled torch model MODEL.pt with --allow-pickle.
    """
    from seqlift import pipeline

    heads = pipeline.pair_heads(model_output, target_kind)
    request = pipeline.build_request(model, input, genome=genome, skip_invalid=skip_invalid,
                                     out=out if out is not None else f"{input}.seqlift.h5", output=heads[0][0],
                                     target=heads[0][1], **options)
    if len(heads) > 1:
        _score_heads(request, heads, tasks, quiet)
        return
    plan = pipeline.prepare(request, lambda n_outputs: _parse_tasks(tasks, n_outputs))
    progress = Progress(len(plan.rows), "scoring", quiet)
    try:
        result = pipeline.run(plan, progress.update, progress.resumed)
    finally:
        progress.close()
    worst = result.worst_delta(plan.delta_thresholds[0])
    if worst:
        click.echo(f"seqlift: warning: {worst}", err=True)
    if not quiet:
        click.echo(f"wrote {result.out} ({result.n} sequences, {len(plan.tasks)} task(s), "
                   f"{progress.rate:.1f} sequences/s) and {result.summary}", err=True)
    plan.request.outputs.finish(plan, result.out)


def _score_heads(request, heads, tasks, quiet):
    """`seqlift score` with several --output/--target pairs: one pass over the input, one file per pair."""
    from seqlift import pipeline
    from seqlift.errors import SeqliftError

    if tasks and all(target != TASK_TARGET for _, target in heads):
        raise SeqliftError("--task applies to --target logit; every --target given explains a whole output")
    plans = pipeline.prepare_heads(request, heads,
                                   lambda target, n: _parse_tasks(tasks if target == TASK_TARGET else (), n))
    progress = Progress(len(plans[0].rows), "scoring", quiet)
    try:
        results = pipeline.run_heads(plans, progress.update, progress.resumed)
    finally:
        progress.close()
    for plan, result in zip(plans, results):
        worst = result.worst_delta(plan.delta_thresholds[0])
        if worst:
            click.echo(f"seqlift: warning: {result.out}: {worst}", err=True)
    if not quiet:
        files = ", ".join(f"{r.out} ({p.request.model.output}, {p.request.method.target})"
                          for p, r in zip(plans, results))
        click.echo(f"wrote {files} and their summaries ({results[0].n} sequences, {progress.rate:.1f} sequences/s)",
                   err=True)
    for plan, result in zip(plans, results):
        plan.request.outputs.finish(plan, result.out)


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("variants", type=click.Path(dir_okay=False))
@click.option("--genome", required=True, type=click.Path(dir_okay=False),
              help="Genome FASTA the variants are on (indexed or indexable; REF is checked against it).")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Variant file (HDF5, read by seqlift view and seqlift logo --variant); OUT.tsv beside it.")
@click.option("--null", type=click.IntRange(0), default=0, show_default=True,
              help="Also score K dinucleotide shuffles of each variant's window with the alleles in place: an "
                   "empirical p-value of |effect| and Benjamini-Hochberg q-values.")
@click.option("--skip-invalid", is_flag=True,
              help="Skip variants whose REF does not match the genome, on unknown chromosomes, or whose windows "
                   "fall off their chromosome (counted on stderr).")
@MODEL_OPTIONS
@METHOD_OPTIONS
@REFERENCE_OPTIONS
@SCALE_OPTIONS
@RUN_OPTIONS
@user_errors
def variants(model, variants, genome, out, null, skip_invalid, tasks, model_output, target_kind, backend, quiet,
             **options):
    """Score each variant of VARIANTS (VCF: plain, bgzip or gzip; or TSV chrom pos ref alt [id]) with MODEL: both
    alleles' windows, their contributions and predictions, and the effect alt - ref."""
    from seqlift import effects, pipeline
    from seqlift.errors import SeqliftError

    heads = pipeline.pair_heads(model_output, target_kind)
    if len(heads) > 1:
        raise SeqliftError("seqlift variants explains one --output/--target pair per run; run it once per head")
    request = pipeline.build_request(model, variants, genome=genome, skip_invalid=skip_invalid,
                                     outputs=effects.VariantOutputs, out=out, output=heads[0][0], target=heads[0][1],
                                     **options)
    plan = effects.prepare_variants(request, lambda n_outputs: _parse_tasks(tasks, n_outputs), null)
    progress = Progress(len(plan.plan.rows), "scoring variants", quiet)
    try:
        result = effects.run_variants(plan, progress.update, progress.resumed)
    finally:
        progress.close()
    worst = result.worst_delta(plan.plan.delta_thresholds[0])
    if worst:
        click.echo(f"seqlift: warning: {worst}", err=True)
    if not quiet:
        click.echo(f"wrote {result.out} ({result.n} variants, {len(plan.plan.tasks)} task(s), "
                   f"{progress.rate:.1f} variants/s) and {result.summary}", err=True)


@cli.command()
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--n-seqs", type=click.IntRange(4), default=8000, show_default=True, help="Number of sequences.")
@click.option("--length", type=click.IntRange(1), default=200, show_default=True, help="Sequence length (bp).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the simulated sequences, motif placements and training.")
@click.option("--background", default="0.3,0.2,0.2,0.3", show_default=True, help="A,C,G,T background frequencies.")
@click.option("--train", is_flag=True, help="Also train the paper's model: model.h5, metrics.tsv and the test split.")
@click.option("--force", is_flag=True, help="Write into an existing non-empty OUTDIR (only seqlift's files are replaced).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@user_errors
def simulate(outdir, n_seqs, length, seed, background, train, force, quiet):
    """Simulate the TAL1/GATA1 data set of the DeepLIFT paper, with ground truth, into OUTDIR."""
    from seqlift import references, simulation

    bg = references.parse_background(background)
    bars = []  # one bar over the training epochs (early stopping may end it before the last)

    def epoch_done(epoch, epochs):
        if not bars:
            bars.append(Progress(epochs, "training", quiet))
        bars[0].update(epoch - bars[0].done)

    try:
        sim, metrics = simulation.simulate_into(outdir, n_seqs=n_seqs, length=length, seed=seed, background=bg,
                                                train_model=train, force=force, progress=epoch_done)
    finally:
        for bar in bars:
            bar.close()
    if quiet:
        return
    out = Path(outdir)
    click.echo(f"wrote {out / 'sequences.fa'}, {out / 'labels.tsv'}, {out / 'motifs.tsv'} "
               f"({n_seqs} sequences, {len(sim.motifs)} motif instances) and {out / simulation.DATABASE_NAME} "
               "(for seqlift motifs --motif-db)", err=True)
    if train:
        click.echo(metrics.to_string(index=False), err=True)
        click.echo(f"wrote {out / 'model.h5'}, {out / 'metrics.tsv'} and the test split (test.fa, "
                   "test_labels.tsv, test_motifs.tsv)", err=True)


@cli.command()
@click.argument("simdir", type=click.Path(file_okay=False))
@click.option("--out", "outdir", required=True, type=click.Path(file_okay=False), help="Folder for benchmark.tsv, plots and benchmark.md.")
@click.option("--model", type=click.Path(dir_okay=False), default=None, help="Model to explain.  [default: SIMDIR/model.h5]")
@click.option("--method", "methods", multiple=True, help="Only these methods (repeatable; a label or a --method name).  [default: all]")
@click.option("--n-test", type=click.IntRange(1), default=None, help="Use only the first N test sequences.  [default: all]")
@click.option("--n-refs", type=click.IntRange(1), default=20, show_default=True, help="Dinucleotide shuffles per sequence.")
@click.option("--sensitivity-seqs", type=click.IntRange(1), default=100, show_default=True,
              help="Test sequences used for Sensitivity-n.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the references and of Sensitivity-n's random subsets.")
@click.option("--motifs", is_flag=True, help="Also run TF-MoDISco-lite per method: which recover GATA1 and TAL1 (~1 min each).")
@click.option("--force", is_flag=True, help="Write into an existing non-empty folder (only seqlift's files are replaced).")
@click.option("--quiet", is_flag=True, help="No progress output.")
@user_errors
def benchmark(simdir, outdir, model, methods, n_test, n_refs, sensitivity_seqs, seed, motifs, force, quiet):
    """Compare attribution methods on a `seqlift simulate` data set with known motif positions."""
    from seqlift.simulation import evaluation as bench

    def progress(label):
        if not quiet:
            click.echo(f"scoring with {label}", err=True)

    with warnings.catch_warnings():
        if quiet:  # --motifs matches against the simulation's two motifs: TOMTOM's small-database notice
            warnings.filterwarnings("ignore", message="tomtom was given")
        table = bench.run_benchmark(simdir, outdir, model=model, methods=list(methods) or None, n_test=n_test,
                                    n_refs=n_refs, seed=seed, sensitivity_seqs=sensitivity_seqs, progress=progress,
                                    motifs=motifs, force=force)
    if not quiet:
        columns = ["method", "task", "auroc", "auprc", "fn_gata1", "fn_tal1", "s_per_1000"]
        click.echo(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"), err=True)
        click.echo(f"wrote {Path(outdir) / 'benchmark.tsv'}, {Path(outdir) / 'benchmark.md'} and plots", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--out", "outdir", required=True, type=click.Path(file_okay=False), help="Folder for motifs.tsv, motifs.meme, logos, seqlets.bed and report.html.")
@click.option("--task", type=int, default=None, help="Task to analyse.  [default: the file's first task]")
@click.option("--motif-db", default="jaspar", show_default=True,
              help="What TOMTOM names the patterns with: jaspar (JASPAR 2024 CORE, shipped by pyjaspar: no download), "
                   "a MEME file (HOCOMOCO, ...; `seqlift simulate OUTDIR` writes OUTDIR/simulation_motifs.meme), or "
                   "none (patterns left unnamed).")
@click.option("--jaspar-taxon", type=click.Choice(["vertebrates", "plants", "insects", "fungi", "nematodes",
                                                   "urochordates", "all"]), default=None,
              help="With --motif-db jaspar: the JASPAR CORE collection's taxonomic group.  [default: vertebrates]")
@click.option("--max-seqlets", type=click.IntRange(1), default=2000, show_default=True, help="Seqlets per metacluster.")
@click.option("--window", type=click.IntRange(1), default=None, help="Central window searched for seqlets (bp).  [default: the whole sequence]")
@click.option("--n-leiden", type=click.IntRange(1), default=2, show_default=True, help="Leiden clusterings with different seeds.")
@click.option("--seqlet-window", type=click.IntRange(1), default=None,
              help="Seqlet core (bp): TF-MoDISco-lite's library default, which seqlift's benchmark used; "
                   "`modisco motifs` defaults to 20 (-z).  [default: 21, or the window searched if shorter]")
@click.option("--seqlet-flank", type=click.IntRange(0), default=None,
              help="Flank added to each side of a seqlet (bp): the library's default; `modisco motifs` defaults to 5 "
                   "(-f). Core and flanks must fit in the window searched.  [default: 10, or a quarter of the window "
                   "if less]")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of TF-MoDISco-lite's random draws (numpy's global generator, as modisco-lite uses it).")
@click.option("--force", is_flag=True,
              help="Write into an existing non-empty folder: only the files seqlift writes are replaced.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@user_errors
def motifs(scores, outdir, task, motif_db, jaspar_taxon, max_seqlets, window, n_leiden, seed, force, quiet,
           seqlet_window, seqlet_flank):
    """Discover motifs in a score file with TF-MoDISco-lite and name them with TOMTOM."""
    from seqlift import motifs as motifs_mod

    def started():
        if quiet:
            return
        if motif_db == motifs_mod.NO_DATABASE:
            click.echo("--motif-db none: patterns are not named by TOMTOM", err=True)
        elif motif_db == motifs_mod.JASPAR:
            click.echo(f"naming patterns against {motifs_mod.JASPAR_RELEASE} CORE "
                       f"({jaspar_taxon or motifs_mod.JASPAR_TAXON}), shipped by pyjaspar; "
                       "--motif-db FILE.meme for another database", err=True)
        click.echo("running TF-MoDISco-lite (minutes for thousands of sequences)", err=True)

    with warnings.catch_warnings():  # the filter below ends with the command (tests run many in one process)
        if quiet:  # TOMTOM's small-database notice too: the README says why the shipped database is small
            warnings.filterwarnings("ignore", message="tomtom was given")
        table = motifs_mod.discover_motifs(scores, outdir, task=task, motif_db=motif_db, max_seqlets=max_seqlets,
                                           window=window, n_leiden=n_leiden, seed=seed,
                                           verbose=not quiet and sys.stderr.isatty(), force=force, started=started,
                                           seqlet_window=seqlet_window, seqlet_flank=seqlet_flank,
                                           jaspar_taxon=jaspar_taxon)
    if quiet:
        return
    columns = ["pattern", "n_seqlets", "consensus", "best_match", "q_value"]
    click.echo(table[columns].to_string(index=False) if len(table) else "no patterns found", err=True)
    click.echo(f"wrote {Path(outdir) / 'motifs.tsv'}, motifs.meme, logos and report.html", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--motifs", "motifs_path", required=True, type=click.Path(),
              help="The motifs to place: a seqlift motifs folder made from SCORES, a modisco-lite results .h5, or a "
                   "MEME file (each PWM used as a CWM of its logo's letter heights).")
@click.option("--out", "outdir", required=True, type=click.Path(file_okay=False),
              help="Folder for hits.tsv, hits.bed, motif_summary.tsv, cooccurrence.tsv/.png and spacing histograms.")
@click.option("--task", type=int, default=None, help="Task whose scores are searched.  [default: the file's first task]")
@click.option("--lambda", "lambda_", type=float, default=0.7, show_default=True,
              help="Fi-NeMo's L1 penalty and minimum correlation of a hit with its CWM, above 0: higher calls fewer "
                   "hits.")
@click.option("--trim-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.3,
              show_default=True, help="Each CWM is trimmed to the positions whose summed |contribution| reaches this "
                                      "fraction of its largest (Fi-NeMo's default).")
@click.option("--chunk-size", type=click.IntRange(1), default=2000, show_default=True,
              help="Sequences fitted at a time: memory is set by it, not by the file.")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True,
              help="Where Fi-NeMo runs: auto takes a GPU when torch sees one.")
@click.option("--force", is_flag=True,
              help="Write into an existing non-empty folder: only the files seqlift writes are replaced.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@user_errors
def hits(scores, motifs_path, outdir, task, lambda_, trim_threshold, chunk_size, device, force, quiet):
    """Where each motif sits: Fi-NeMo's hit caller on the contribution scores of SCORES (pip install
    'seqlift[hits]'). On a seqlift variants file: the motif instances each variant destroys or creates."""
    from seqlift import hits as hits_mod
    from seqlift.errors import SeqliftError

    try:
        import finemo  # noqa: F401
        import torch
    except ImportError:
        raise SeqliftError("seqlift hits runs Fi-NeMo, which is not installed: pip install 'seqlift[hits]'") from None
    if device == "gpu" and not torch.cuda.is_available():
        raise SeqliftError("--device gpu: torch sees no GPU")
    bars = []  # made once the inputs are checked and the number of sequences is known
    hits_mod.steady_heap()  # peak memory flat over any number of chunks (see its docstring)
    try:
        result = hits_mod.call_hits(scores, motifs_path, outdir, task=task, lambda_=lambda_, threshold=trim_threshold,
                                    chunk=chunk_size, device={"auto": None, "cpu": "cpu", "gpu": "cuda"}[device],
                                    force=force, started=lambda n: bars.append(Progress(n, "calling hits", quiet)),
                                    progress=lambda n: bars[0].update(n))
    finally:
        for bar in bars:
            bar.close()
    if result.get("unconverged"):
        click.echo(f"seqlift: warning: Fi-NeMo did not converge on {result['unconverged']} sequence(s); their hits are "
                   "those of its last step", err=True)
    if not quiet and "variants" in result:
        click.echo(f"wrote {Path(outdir) / 'variant_hits.tsv'}: of the motif instances the {result['variants']} "
                   f"variants touch, {result['destroyed']} destroyed, {result['created']} created, {result['kept']} "
                   "kept; and variant_hits_summary.tsv", err=True)
    elif not quiet:
        click.echo(f"wrote {result['hits']} hits in {result['sequences']} sequences to {Path(outdir) / 'hits.tsv'}"
                   + (", hits.bed" if result["bed"] else " (no genome coordinates: no hits.bed)")
                   + ", motif_summary.tsv, cooccurrence.tsv and spacing histograms", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Image file: .png, .svg or .pdf.")
@click.option("--task", type=int, default=None, help="Task to draw.  [default: the file's first task]")
@click.option("--name", default=None, help="Draw the sequence with this name.")
@click.option("--top", type=click.IntRange(1), default=None, help="Draw the K sequences with the largest total contribution (at most 100 in one image).  [default: 1]")
@click.option("--hypothetical", is_flag=True, help="Hypothetical contributions (all four letters) instead of projected.")
@click.option("--start", type=click.IntRange(0), default=None, help="First position drawn (0-based).  [default: 0]")
@click.option("--end", type=click.IntRange(1), default=None, help="Position after the last drawn.  [default: sequence end]")
@click.option("--around-max", type=click.IntRange(1), default=None,
              help="Draw the W-bp window with the largest summed |contribution|.  [default: 50, without --start/--end/--full]")
@click.option("--full", is_flag=True, help="Draw the whole sequence (a 200 bp sequence is about 5,400 pixels wide).")
@click.option("--motifs", "motifs_path", type=click.Path(dir_okay=False), default=None,
              help="Shade motifs from a TSV with name, motif, start, end columns and optionally colour (or color: "
                   "any matplotlib colour; otherwise a light shade per motif name in sorted order, none a letter's "
                   "own colour). `seqlift simulate` writes motifs.tsv and test_motifs.tsv; the shipped example's is "
                   "data/simulations/test_motifs.tsv.")
@click.option("--variant", default=None,
              help="A variant file (seqlift variants): draw this variant (ID or chrom:pos:ref:alt), ref above alt.")
@user_errors
def logo(scores, out, task, name, top, hypothetical, start, end, around_max, full, motifs_path, variant):
    """Draw contribution logos from a seqlift score file (or one variant of a variant file: --variant)."""
    from seqlift import plots

    if variant is not None:
        given = [o for o, v in (("--name", name), ("--top", top), ("--around-max", around_max), ("--full", full),
                                ("--motifs", motifs_path)) if v]
        if given:
            raise click.UsageError(f"{given[0]} does not apply with --variant")
        path = plots.draw_variant_logo(scores, out, variant, task=task, hypothetical=hypothetical, start=start, end=end)
        click.echo(f"wrote {path}", err=True)
        return
    path = plots.draw_logo_file(scores, out, task=task, name=name, top=top, hypothetical=hypothetical, start=start,
                                end=end, around_max=around_max, motifs_path=motifs_path, full=full)
    click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="bigWig file to write.")
@click.option("--chrom-sizes", type=click.Path(dir_okay=False), default=None, help="Two-column chrom<TAB>size file.")
@click.option("--genome", type=click.Path(dir_okay=False), default=None, help="Genome FASTA (its index gives the sizes).")
@click.option("--task", type=int, default=None, help="Task to write.  [default: the file's first task]")
@click.option("--hypothetical-max", is_flag=True, help="Write the strongest hypothetical base instead of the projected sum.")
@click.option("--force", is_flag=True, help="Replace an existing file at --out (a bigWig cannot say who wrote it, "
                                            "so one is refused without this).")
@user_errors
def bigwig(scores, out, chrom_sizes, genome, task, hypothetical_max, force):
    """Write per-base contributions of a score file as a bigWig track (BED-scored files keep their
    coordinates; otherwise record names must be chrom:start-end)."""
    from seqlift import tracks

    path = tracks.write_bigwig_file(scores, out, chrom_sizes=chrom_sizes, genome=genome, task=task,
                                    hypothetical_max=hypothetical_max, force=force)
    click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--motifs", "motifs_dir", type=click.Path(file_okay=False), default=None,
              help="A seqlift motifs folder made from SCORES: its seqlets drawn on the logos, its CWMs in a panel.")
@click.option("--hits", "hits_dir", type=click.Path(file_okay=False), default=None,
              help="A seqlift hits folder made from SCORES: each motif instance boxed on the logos, a filter per "
                   "motif, and each motif's hits linking to their sequence, zoomed.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the default is reachable from this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: a free one).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write one self-contained page (data inline, works offline) instead of serving.")
@click.option("--top", type=click.IntRange(1, 100000), default=None,
              help="With --out: the K sequences with the highest prediction (variants: largest |effect|).  [default: 500]")
@click.option("--names", type=click.Path(dir_okay=False), default=None,
              help="With --out: a file of names (one per line) to include instead of --top.")
@user_errors
def view(scores, motifs_dir, hits_dir, host, port, out, top, names):
    """Browse SCORES (a score or variant file) in a web browser: a sortable table and each sequence's logo.

    Serves until Ctrl-C on a local address with a random token in the URL; --out writes a page to send instead.
    """
    from seqlift import view as view_mod

    if out is None:
        for option, value in (("--top", top), ("--names", names)):
            if value is not None:
                raise click.UsageError(f"{option} applies to --out only (a server shows every row)")

        def ready(url):
            click.echo(f"seqlift view: serving {scores} at {url}  (Ctrl-C stops it)", err=True)

        view_mod.serve(scores, motifs_dir, host=host, port=port, ready=ready, hits_dir=hits_dir)
        click.echo("seqlift view: stopped", err=True)
        return
    if top is not None and names is not None:
        raise click.UsageError("give --top or --names, not both")
    path = view_mod.write_page(scores, out, motifs_dir, top=top or 500, names=names, hits_dir=hits_dir)
    click.echo(f"wrote {path}", err=True)


@cli.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="HDF5 file in chrombpnet's contribution layout: raw/seq, shap/seq, projected_shap/seq, each "
                   "(N, 4, L), for `modisco motifs -i OUT` and scripts written for chrombpnet.")
@click.option("--task", type=int, default=None, help="Task to export.  [default: the file's first task]")
@user_errors
def export(scores, out, task):
    """Write a score file's contributions in chrombpnet's layout (one task)."""
    from seqlift.outputs import Outputs
    from seqlift.scorefile import export_chrombpnet

    with Outputs([scores]) as outputs:
        n = export_chrombpnet(outputs, scores, out, task)
    click.echo(f"wrote {out} ({n} sequences; modisco motifs -i {out} -n 2000 -w L reads it)", err=True)


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False))
@user_errors
def merge(out, shards):
    """Join the score files of seqlift score --shard K/N (or variant files of seqlift variants --shard K/N; all N,
    any order) into OUT, in input order."""
    from seqlift.outputs import Outputs
    from seqlift.files import merge as merge_files

    with Outputs(shards) as outputs:
        n, kind = merge_files(outputs, out, list(shards))
    click.echo(f"wrote {out} ({n} {kind.rows} from {len(shards)} shards)", err=True)


# The lock file inside each run's temporary folder: the run holds an ``flock`` on it for its whole life.
_SCRATCH_LOCK = ".seqlift-run-lock"
_SCRATCH_PREFIX = "seqlift-run-"


def _scratch_folder() -> tuple[str, int] | None:
    """A folder of this run's own, made in the temporary folder, that every library's temporary files go to
    (TensorFlow's generated modules, a local Ray cluster's session and its workers' files): ``main`` removes it
    however the run ends, since a failed run's ``os._exit`` skips the exit handlers that would remove them one by
    one, and Ray's workers are stopped without running theirs. The run holds an ``flock`` on a lock file inside it
    for its whole life, so a later run removes it only once its owner is gone (``_remove_abandoned_scratch``).
    Returns the folder and the lock's descriptor, or None where no folder can be made there."""
    import fcntl
    import shutil
    import tempfile

    parent = tempfile.gettempdir()
    try:
        making = tempfile.mkdtemp(prefix="seqlift-new-", dir=parent)
    except OSError:
        return None
    fd = None
    try:  # made and locked under another prefix, then renamed: a seqlift-run-* folder is never unlocked while live
        fd = os.open(os.path.join(making, _SCRATCH_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        scratch = os.path.join(parent, _SCRATCH_PREFIX + os.path.basename(making).removeprefix("seqlift-new-"))
        os.rename(making, scratch)
    except OSError:
        shutil.rmtree(making, ignore_errors=True)
        if fd is not None:
            os.close(fd)
        return None
    _remove_abandoned_scratch(parent, scratch)
    os.environ["TMPDIR"] = scratch  # child processes (Ray's) too
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    return scratch, fd


def _remove_abandoned_scratch(parent: str, own: str):
    """Remove the temporary folders of runs that are gone (SIGKILL, a crash: no handler of theirs ran). A folder
    is abandoned when its lock can be taken: a live run holds it, whatever its process id or PID namespace (a
    container sharing /tmp); a folder with no lock file is not judged."""
    import fcntl
    import shutil

    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_SCRATCH_PREFIX) or entry.path == own:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            fd = os.open(os.path.join(entry.path, _SCRATCH_LOCK), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(entry.path, ignore_errors=True)  # while holding its lock: no other run judges it meanwhile
        except OSError:  # held: its run is alive
            pass
        finally:
            os.close(fd)


def main():
    import shutil

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    signal.signal(signal.SIGINT, _stop)
    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit, a write fails (EFBIG) instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    scratch = _scratch_folder()

    def remove_scratch():
        if scratch:
            shutil.rmtree(scratch[0], ignore_errors=True)
            os.close(scratch[1])

    try:
        cli(prog_name="seqlift")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if code == 0:
            raise
        # A failed run has removed its temporaries already. Skip the C libraries' exit handlers: HDF5's
        # crashes on a file whose last write failed (disk full, file-size limit).
        sys.stdout.flush()
        sys.stderr.flush()
        remove_scratch()
        os._exit(code)
    finally:
        remove_scratch()


if __name__ == "__main__":
    main()
