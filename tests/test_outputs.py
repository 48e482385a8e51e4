"""The output helper (seqlift.outputs): temporaries, renames, and what a killed or failed run leaves behind."""

import os

import pytest

from seqlift.outputs import Outputs


def test_replacing_swaps_a_file_only_when_its_block_completes(tmp_path):
    """The one rebuild-then-rename of an owned file (a resumed OUT.partial): complete or untouched, no temporary left."""
    path = tmp_path / "out.h5.partial"
    path.write_text("old")
    outputs = Outputs()
    with pytest.raises(RuntimeError):
        with outputs.replacing(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed halfway")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5.partial"]
    with outputs.replacing(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".out.h5.partial.seqlift-tmp-")
        tmp.write_text("new")
        outputs.abort()  # a signal arriving inside the block removes its temporary too
        assert not tmp.exists()
        tmp.write_text("new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5.partial"]


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_temporaries_are_removed_by_the_next_run_and_a_live_ones_kept(tmp_path):
    """SIGKILL leaves ``.NAME.seqlift-tmp-PID`` files no handler could remove: the next run writing NAME
    removes those of processes that no longer run, and leaves a running process's (and other files) alone."""
    dead, live = _dead_pid(), os.getppid()
    stale = [tmp_path / f".s.h5.seqlift-tmp-{dead}.h5", tmp_path / f".s.h5.partial.seqlift-tmp-{dead}"]
    kept = [tmp_path / f".s.h5.seqlift-tmp-{live}.h5", tmp_path / f".other.h5.seqlift-tmp-{dead}.h5",
            tmp_path / f".s.h5.seqlift-tmp-{dead}.notes.txt.bak"]
    for path in stale + kept:
        path.write_text("x")
    with Outputs() as outputs:
        partial, _ = outputs.partial(tmp_path / "s.h5", resume=False)
        with outputs.replacing(partial) as setup:
            setup.write_text("set up")
            assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept) and (tmp_path / "s.h5").read_text() == "set up"


def test_a_set_up_file_is_removed_when_the_run_fails_before_renaming_it(tmp_path):
    with pytest.raises(RuntimeError):
        with Outputs() as outputs, outputs.replacing(tmp_path / "s.h5.partial") as setup:
            setup.write_text("half set up")
            raise RuntimeError("interrupted")
    assert not list(tmp_path.iterdir())


def test_a_folder_run_removes_only_its_own_earlier_files_that_it_did_not_write_again(tmp_path):
    # with --force a second run left the first's files it no longer writes (hits.bed, a spacing histogram) beside its
    # own: a folder mixing two runs. Only names the command owns go; a user's file, or a link, stays.
    out = tmp_path / "out"
    out.mkdir()
    for name in ("table.tsv", "plot_a.png", "plot_b.png", "notes.txt", "plot.png.bak"):
        (out / name).write_text("earlier")
    (tmp_path / "kept.png").write_text("user's")
    (out / "plot_link.png").symlink_to(tmp_path / "kept.png")
    with Outputs() as outputs:
        tmp = outputs.folder(out, force=True, owns=("table.tsv", "plot_*.png"))
        (tmp / "table.tsv").write_text("new")
        (tmp / "plot_a.png").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "plot.png.bak", "plot_a.png", "plot_link.png",
                                                     "table.tsv"]
    assert (out / "plot_a.png").read_text() == "new" and (tmp_path / "kept.png").read_text() == "user's"
    with Outputs() as outputs:  # without owns (a command that names nothing): nothing of an earlier run goes
        tmp = outputs.folder(out, force=True)
        (tmp / "table.tsv").write_text("newer")
    assert len(list(out.iterdir())) == 5
