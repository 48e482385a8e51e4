"""Genome scale (seqlift.pipeline, scorefile, cluster): --resume after SIGKILL, --shard and merge, Ray.

Byte identity here means: the same set of datasets, each with the same dtype, shape and values
(``np.array_equal``; strings compared decoded), and the same root attributes. The HDF5 file's own bytes
may differ (free-space and metadata layout), which no reader sees.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from seqlift import SeqliftError
from seqlift.cli.main import cli

from helpers import completed_rows

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ("--n-refs", 2, "--chunk-size", 7, "--quiet")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def h5_contents(path) -> dict:
    """Every dataset (dtype, shape, values) and every root attribute of an HDF5 file."""
    with h5py.File(path, "r") as h5:
        data = {key: (h5[key].dtype.str, h5[key].shape, h5[key][()]) for key in h5}
        attrs = {key: h5.attrs[key] for key in h5.attrs}
    return {"datasets": data, "attrs": attrs}


def assert_same_contents(a, b):
    a, b = h5_contents(a), h5_contents(b)
    assert a["datasets"].keys() == b["datasets"].keys()
    for key, (dtype, shape, values) in a["datasets"].items():
        assert (dtype, shape) == b["datasets"][key][:2], key
        assert np.array_equal(values, b["datasets"][key][2]), key
    assert a["attrs"].keys() == b["attrs"].keys()
    for key, value in a["attrs"].items():
        assert np.array_equal(np.asarray(value), np.asarray(b["attrs"][key])), key


@pytest.fixture(scope="module")
def many(files, tmp_path_factory):
    """300 sequences of 40 bp (43 chunks of 7 with ``--chunk-size 7``) and their uninterrupted scores."""
    d = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(1)
    (d / "many.fa").write_text("".join(f">w{i}\n{''.join(rng.choice(list('ACGT'), 40))}\n" for i in range(300)))
    result = invoke("score", files / "model.h5", d / "many.fa", "--task", "all", "--out", d / "plain.h5", *SETTINGS)
    assert result.exit_code == 0, result.output
    return d


def _score_process(model, fasta, out, *extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    args = ["score", model, fasta, "--task", "all", "--out", out, *SETTINGS, *extra]
    return subprocess.Popen([sys.executable, "-c", "from seqlift.cli.main import main; main()", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("after", [pytest.param(k, marks=pytest.mark.slow) for k in (0, 14, 35, 70, 154)])  # 6-12 s
def test_resume_after_sigkill_equals_an_uninterrupted_run(files, many, tmp_path, after):
    """SIGKILL once ``after`` sequences are on disk (0: as soon as the in-progress file appears, mid-setup
    or mid-chunk), then ``--resume``: the same datasets and attributes as the run never interrupted."""
    out = tmp_path / "resumed.h5"
    partial = tmp_path / "resumed.h5.partial"
    proc = _score_process(files / "model.h5", many / "many.fa", out)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if partial.exists() and completed_rows(partial) >= after:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and partial.exists(), "the run ended before the kill: give it more sequences"
    result = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS,
                    "--resume")
    assert result.exit_code == 0, result.output
    assert not partial.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.h5", "resumed.tsv"]  # the killed run's temporaries too
    assert_same_contents(out, many / "plain.h5")
    assert out.with_suffix(".tsv").read_text() == (many / "plain.tsv").read_text()


def _interrupted(files, many, tmp_path, monkeypatch) -> Path:
    """An in-progress file with 14 of 300 sequences completed: a ``--resume`` run stopped by Ctrl-C in its
    third chunk (a run with ``--resume`` keeps its in-progress file on failure)."""
    from seqlift import pipeline

    real, calls = pipeline.score_chunk, []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = tmp_path / "part.h5"
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "score_chunk", stopped)
        result = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS,
                        "--resume")
    assert result.exit_code != 0 and not out.exists()
    assert result.stderr.strip().endswith(f"{out}.partial was kept: run the same command with --resume to continue, "
                                          "or remove it to start again")
    with h5py.File(tmp_path / "part.h5.partial", "r") as h5:
        assert h5.attrs["resume_completed_sequences"] == 14
    return out


def test_resume_with_other_settings_or_input_is_refused(files, many, tmp_path, monkeypatch):
    out = _interrupted(files, many, tmp_path, monkeypatch)
    other = tmp_path / "other.fa"
    text = (many / "many.fa").read_text()
    other.write_text(text[:5] + ("C" if text[5] != "C" else "G") + text[6:])
    cases = [((many / "many.fa", "--seed", 3), "seed (was 0, now 3)"),
             ((many / "many.fa", "--chunk-size", 5), "chunk_size (was 7, now 5)"),
             ((other,), "input_sha256 (was"), ((many / "many.fa", "--n-refs", 3), "n_refs (was 2, now 3)")]
    for (fasta, *extra), message in cases:
        args = ["score", files / "model.h5", fasta, "--task", "all", "--out", out, *SETTINGS, *extra, "--resume"]
        result = invoke(*args)
        assert result.exit_code == 1 and message in result.stderr, (extra, result.output)
        assert (tmp_path / "part.h5.partial").exists() and not out.exists()
    plain = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS)
    assert plain.exit_code == 1 and "add --resume to continue it" in plain.stderr


def _stopped_in_second_chunk(monkeypatch, error):
    from seqlift import pipeline

    calls, real = [], pipeline.score_chunk

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "score_chunk", failing)


def test_a_failed_plain_run_leaves_nothing(files, many, tmp_path, monkeypatch):
    """Without --resume, an error mid-run removes the in-progress file as it removes every temporary."""
    _stopped_in_second_chunk(monkeypatch, SeqliftError("a chunk failed"))
    result = invoke("score", files / "model.h5", many / "many.fa", "--out", tmp_path / "x.h5", *SETTINGS)
    assert result.exit_code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ctrl_c_after_a_completed_chunk_keeps_it_for_resume(files, many, tmp_path, monkeypatch):
    """A plain run stopped after its first flushed chunk keeps OUT.partial (only it: no TSV, no lock, no
    temporaries) and says how to continue; --resume then ends with the file an uninterrupted run writes."""
    out = tmp_path / "x.h5"
    with monkeypatch.context() as patch:
        _stopped_in_second_chunk(patch, KeyboardInterrupt)
        result = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == [
        f"seqlift: interrupted (SIGINT); {out}.partial was kept: run the same command with --resume to continue, "
        "or remove it to start again"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5.partial"]
    again = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS)
    assert again.exit_code == 1 and "add --resume to continue it" in again.stderr
    resumed = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert_same_contents(out, many / "plain.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5", "x.tsv"]


def _shards(files, many, tmp_path, n) -> list[Path]:
    paths = []
    for k in range(1, n + 1):
        paths.append(tmp_path / f"shard{k}.h5")
        result = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", paths[-1],
                        *SETTINGS, "--shard", f"{k}/{n}")
        assert result.exit_code == 0, result.output
    return paths


def test_shards_merged_equal_the_run_that_scores_everything(files, many, tmp_path):
    shards = _shards(files, many, tmp_path, 3)
    sizes = [h5py.File(p, "r")["names"].shape[0] for p in shards]
    assert sum(sizes) == 300 and all(size % 7 == 0 for size in sizes[:-1])  # whole chunks
    result = invoke("merge", tmp_path / "merged.h5", *reversed(shards))  # any order: joined by K
    assert result.exit_code == 0, result.output
    assert_same_contents(tmp_path / "merged.h5", many / "plain.h5")
    assert (tmp_path / "merged.tsv").read_text() == (many / "plain.tsv").read_text()


def test_merge_refuses_missing_repeated_or_foreign_shards(files, many, tmp_path):
    shards = _shards(files, many, tmp_path, 2)
    other = tmp_path / "other"
    other.mkdir()
    foreign = invoke("score", files / "model.h5", many / "many.fa", "--task", "all", "--out", other / "s2.h5",
                     *SETTINGS, "--seed", 5, "--shard", "2/2")
    assert foreign.exit_code == 0, foreign.output
    cases = [((shards[0],), "shard(s) 2/2 missing"), ((shards[0], shards[0]), "repeated"),
             ((shards[0], other / "s2.h5"), "differs from"), ((many / "plain.h5",), "not a shard")]
    for given, message in cases:
        result = invoke("merge", tmp_path / "m.h5", *given)
        assert result.exit_code == 1 and message in result.stderr, (given, result.output)
        assert not (tmp_path / "m.h5").exists()
    bad = invoke("score", files / "model.h5", many / "many.fa", "--out", tmp_path / "b.h5", *SETTINGS, "--shard", "3/2")
    assert bad.exit_code == 1 and "expected K/N" in bad.stderr


@pytest.mark.slow
def test_ray_two_workers_equal_one_process(files, many, tmp_path):
    """A local Ray cluster, 2 workers each holding the model: the same datasets and attributes as one process."""
    pytest.importorskip("ray")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = tmp_path / "ray.h5"
    args = ["score", files / "model.h5", many / "many.fa", "--task", "all", "--out", out, *SETTINGS,
            "--ray", "local", "--workers", 2]
    proc = subprocess.run([sys.executable, "-c", "from seqlift.cli.main import main; main()", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_contents(out, many / "plain.h5")
    assert out.with_suffix(".tsv").read_text() == (many / "plain.tsv").read_text()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _ray_workers(pid: int) -> list[int]:
    workers = []
    for child in _descendants(pid):
        try:
            if b"ChunkScorer" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds Ray's worker processes through /proc")
def test_a_ray_worker_killed_mid_run_has_its_chunks_run_again(files, tmp_path):
    """SIGKILL one of 2 Ray workers while chunks are in flight: Ray starts a worker in its place and runs
    its chunks again, and the file equals the single-process run's."""
    pytest.importorskip("ray")
    n, rng = 1500, np.random.default_rng(2)  # enough chunks that the run outlasts finding and killing a worker
    fasta = tmp_path / "long.fa"
    fasta.write_text("".join(f">w{i}\n{''.join(rng.choice(list('ACGT'), 40))}\n" for i in range(n)))
    plain = invoke("score", files / "model.h5", fasta, "--task", "all", "--out", tmp_path / "plain.h5", *SETTINGS)
    assert plain.exit_code == 0, plain.output
    out, partial = tmp_path / "ray.h5", tmp_path / "ray.h5.partial"
    proc = _score_process(files / "model.h5", fasta, out, "--ray", "local", "--workers", 2)
    deadline, killed, workers = time.time() + 300, None, []
    while time.time() < deadline and proc.poll() is None and killed is None:
        workers = _ray_workers(proc.pid)
        if workers and completed_rows(partial) >= 7:
            killed = (workers[0], completed_rows(partial))
            os.kill(workers[0], signal.SIGKILL)
        time.sleep(0.005)
    later = set()
    while proc.poll() is None:
        later.update(_ray_workers(proc.pid))
        time.sleep(0.01)
    _, stderr = proc.communicate(timeout=600)
    assert killed is not None, "the run ended before a worker could be killed: give it more sequences"
    assert killed[1] < n - 2 * 2 * 7, f"killed after {killed[1]} sequences: too late for chunks to be in flight"
    assert later - set(workers), "Ray did not start a worker in place of the killed one"
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert_same_contents(out, tmp_path / "plain.h5")
    assert out.with_suffix(".tsv").read_text() == (tmp_path / "plain.tsv").read_text()


def test_ray_missing_is_one_line(files, many, tmp_path, monkeypatch):
    """Without Ray installed, --ray is refused in one line naming the extra to install."""
    monkeypatch.setitem(sys.modules, "ray", None)
    result = invoke("score", files / "model.h5", many / "many.fa", "--out", tmp_path / "r.h5", *SETTINGS,
                    "--ray", "local")
    assert result.exit_code == 1 and "pip install 'seqlift[ray]'" in result.stderr, result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_several_heads_resume_where_each_head_stopped(tmp_path, monkeypatch):
    """Stopped after the profile head flushed chunk 2 but before the counts head did: --resume continues
    each head from its own last chunk, and the files equal an uninterrupted run's. Without --resume, Ctrl-C keeps
    both heads' completed chunks too (and says so, naming both)."""
    import keras
    from keras import layers

    from seqlift import pipeline

    inp = keras.Input((40, 4))
    h = layers.Conv1D(6, 5, padding="same", activation="relu")(inp)
    keras.Model(inp, [layers.Conv1D(2, 5, padding="same", name="profile")(h),
                      layers.Dense(1, name="counts")(layers.GlobalAveragePooling1D()(h))]).save(tmp_path / "h.keras")
    rng = np.random.default_rng(2)
    (tmp_path / "in.fa").write_text("".join(f">w{i}\n{''.join(rng.choice(list('ACGT'), 40))}\n" for i in range(30)))
    args = ["score", tmp_path / "h.keras", tmp_path / "in.fa", "--output", "profile", "--target", "profile", "--output",
            "counts", "--target", "sum", *SETTINGS]
    real, calls = pipeline.score_chunk, []

    def stopped(*a, **kw):
        calls.append(1)
        if len(calls) == 4:  # chunk 2 of the counts head
            raise KeyboardInterrupt
        return real(*a, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "score_chunk", stopped)
        plain = invoke(*args, "--out", tmp_path / "plain.h5")
        assert plain.exit_code == 130 and "plain.counts.h5.partial, " in plain.stderr and "were kept" in plain.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["h.keras", "in.fa", "in.fa.fai", "plain.counts.h5.partial",
                                                              "plain.profile.h5.partial"]
        calls.clear()
        assert invoke(*args, "--out", tmp_path / "r.h5", "--resume").exit_code != 0
    for head, completed in (("profile", 14), ("counts", 7)):
        with h5py.File(tmp_path / f"r.{head}.h5.partial", "r") as h5:
            assert h5.attrs["resume_completed_sequences"] == completed
    resumed = invoke(*args, "--out", tmp_path / "r.h5", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert invoke(*args, "--out", tmp_path / "u.h5").exit_code == 0
    for head in ("profile", "counts"):
        assert_same_contents(tmp_path / f"r.{head}.h5", tmp_path / f"u.{head}.h5")
        assert (tmp_path / f"r.{head}.tsv").read_text() == (tmp_path / f"u.{head}.tsv").read_text()
