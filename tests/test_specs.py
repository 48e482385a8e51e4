"""The request's specs, each parsed and checked in its own module (frontends/spec.py ``ModelSpec``, methods.py
``MethodSpec``, references.py ``ReferenceSpec``, destinations.py ``ScoreOutputs``, effects.py ``VariantOutputs``,
scale.py ``ScaleSpec``), ``pipeline.build_request`` handing options to them, and the CLI options score and
variants share. Nothing here loads a model."""

import inspect

import pytest

from seqlift import SeqliftError, pipeline
from seqlift.destinations import ScoreOutputs
from seqlift.effects import VariantOutputs
from seqlift.frontends.spec import ModelSpec
from seqlift.methods import MethodSpec
from seqlift.references import ReferenceSpec
from seqlift.scale import ScaleSpec

SPECS = (ModelSpec, MethodSpec, ReferenceSpec, ScaleSpec)


def test_build_request_hands_each_option_to_its_spec(tmp_path):
    request = pipeline.build_request(
        "m.h5", "in.fa", genome="g.fa", out=tmp_path / "o.h5", modisco="pfx", logo="top.svg", weights="w.h5",
        model_input="seq", output="counts", normalize=False, extra=("ctl=c.npy",), extra_rc=("ctl=reverse",),
        method="deeplift", rule="genomics", target="sum", rc_average=True, delta_warn=0.01, n_refs=5, seed=3,
        batch_size=8, chunk_size=64, shard="1/2", device="cpu")
    assert (request.model.given, request.model.weights, request.model.input, request.model.output) == \
        ("m.h5", "w.h5", "seq", "counts")
    assert request.model.normalize is False and request.model.extra == ("ctl=c.npy",)
    assert (request.method.rule, request.method.target, request.method.rc_average) == ("genomics", "sum", True)
    assert request.method.thresholds == (0.01,)
    assert (request.references.kind, request.references.n_refs, request.references.seed) == ("shuffle", 5, 3)
    assert (request.scale.batch_size, request.scale.chunk_size, request.scale.shard, request.scale.device) == \
        (8, 64, "1/2", "cpu")
    assert (request.outputs.modisco, request.outputs.logo, request.summary) == ("pfx", "top.svg", tmp_path / "o.tsv")
    assert set(request.input_paths()) == {"m.h5", "w.h5", "c.npy", "in.fa", "g.fa"}
    with pytest.raises(TypeError, match=r"unknown option\(s\): n_ref \(did you mean n_refs\?\)"):
        pipeline.build_request("m.h5", "in.fa", out="o.h5", n_ref=5)
    with pytest.raises(TypeError, match=r"no_normalize \(did you mean normalize=False\?\)"):
        pipeline.build_request("m.h5", "in.fa", no_normalize=True)
    with pytest.raises(TypeError, match="unknown option.*logo"):  # a variant file has no logo option
        pipeline.build_request("m.h5", "v.vcf", outputs=VariantOutputs, out="o.h5", logo="x.png")
    assert pipeline.build_request("m.h5", "in.fa").outputs is None  # the Python API: nothing written
    with pytest.raises(SeqliftError, match="modisco needs an output file"):
        pipeline.build_request("m.h5", "in.fa", modisco="pfx")


@pytest.mark.parametrize("parse, message", [
    (lambda: ModelSpec.parse("m.h5", extra=("ctl.npy",)), "--extra ctl.npy: expected NAME=FILE.npy"),
    (lambda: ModelSpec.parse("m.h5", extra_rc=("ctl=sideways",)), "'sideways' is not reverse, swap, both"),
    (lambda: ModelSpec.parse("m.h5", layout="LNC"), "--layout LNC: choose NCL or NLC"),
    (lambda: ModelSpec.parse("m.h5", length=0), "--length 0: must be a whole number"),
    (lambda: MethodSpec.parse("saliency", rule="rescale"), "--rule applies to --method deeplift only"),
    (lambda: MethodSpec.parse("ism", delta_warn=1e-3), "--delta-warn applies to deeplift and"),
    (lambda: MethodSpec.parse(delta_warn=float("nan")), "--delta-warn nan: must be a positive number"),
    (lambda: MethodSpec.parse(target="mean"), "--target mean: choose one of logit, sum, profile"),
    (lambda: MethodSpec.parse("lime"), "unknown method 'lime'"),
    (lambda: ReferenceSpec.parse(n_refs=5, method="saliency"), "--n-refs does nothing with --method saliency"),
    (lambda: ReferenceSpec.parse("zeros", seed=1), "--seed applies to --reference shuffle only"),
    (lambda: ScaleSpec.parse(workers=2), "--workers applies to --ray only"),
    (lambda: ScaleSpec.parse(shard="3/2"), "--shard 3/2: expected K/N with 1 <= K <= N"),
    (lambda: ScaleSpec.parse(device="tpu"), "--device tpu: choose auto, cpu or gpu"),
    (lambda: ScaleSpec.parse(batch_size=0), "--batch-size 0: must be a whole number of at least 1"),
    (lambda: ScoreOutputs.parse("o.h5", chrom_sizes="hg38.sizes"), "--chrom-sizes applies to --bigwig only"),
    (lambda: ScoreOutputs.parse("o.h5", logo="top.gif"), "--logo top.gif: must end in .png, .svg, .pdf"),
    (lambda: pipeline.build_request("m.h5", "in.fa", extra=("c=c.npy",), extra_rc=("c=both",)),
     "--extra-rc applies to --rc-average only"),
    (lambda: pipeline.build_request("m.h5", "in.fa", out="o.h5", bigwig="t.bw"), "--bigwig needs chromosome sizes"),
])
def test_each_spec_refuses_what_does_nothing_or_cannot_work_in_one_line(parse, message):
    with pytest.raises(SeqliftError, match=message.replace("(", r"\(").replace(".", r"\.")) as caught:
        parse()
    assert "\n" not in str(caught.value)


def test_score_and_variants_share_one_definition_of_every_spec_option():
    """Every keyword a spec's parse takes is an option of both commands, with one definition (the same help,
    flags and default): score and variants cannot drift apart."""
    from seqlift.cli.main import score, variants

    skip = {"model", "output", "target"}  # MODEL; --output and --target pair into heads (model_output, target_kind)
    keywords = {name for spec in SPECS for name in inspect.signature(spec.parse).parameters} - skip
    for command in (score, variants):
        missing = keywords - {p.name for p in command.params}
        assert not missing, f"{command.name} lacks {sorted(missing)}"
    by_name = {p.name: p for p in variants.params}
    for param in score.params:
        if param.name in keywords | {"model_output", "target_kind", "tasks", "backend", "quiet"}:
            twin = by_name[param.name]
            assert (param.opts, param.help, param.default, param.multiple, repr(param.type)) == \
                (twin.opts, twin.help, twin.default, twin.multiple, repr(twin.type)), param.name


def test_variant_effects_refuses_file_options_and_names_the_keyword_meant():
    import seqlift

    with pytest.raises(SeqliftError, match="variant_effects: out is for a variant file"):
        seqlift.variant_effects("m.h5", "v.tsv", "g.fa", out="x.h5")
    with pytest.raises(SeqliftError, match="variant_effects: resume is for a variant file"):
        seqlift.variant_effects("m.h5", "v.tsv", "g.fa", resume=True)
    with pytest.raises(TypeError, match="input \\(did you mean model_input"):
        seqlift.variant_effects("m.h5", "v.tsv", "g.fa", input="seq")


def test_every_option_of_every_command_says_what_it_does():
    # --device had no help; the top-level help said "for Keras" though PyTorch modules are scored too
    import click

    from seqlift.cli.main import cli

    silent = [f"{name} {option.opts[0]}" for name, command in cli.commands.items() for option in command.params
              if isinstance(option, click.Option) and not option.help]
    assert silent == []
    assert "PyTorch" in cli.help


def test_the_rate_counts_only_the_rows_this_run_scored():
    from seqlift.cli.main import Progress

    progress = Progress(100, "scoring", quiet=True)
    progress.resumed(90)  # copied from the interrupted run by --resume
    progress.update(10)
    assert (progress.done, progress.scored) == (100, 10)
    progress.start -= 100  # as if it began 100 s ago: 10 rows scored in 100 s, whatever this machine's speed
    assert progress.rate == pytest.approx(0.1, rel=1e-3)
