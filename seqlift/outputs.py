"""Files out: every file and folder seqlift writes goes through one ``Outputs``.

An ``Outputs`` owns a run's outputs from start to end:

- before any work, ``check_file``/``check_folder`` refuse a destination that is one of the run's
  inputs (resolved paths and ``os.path.samefile``, so links count), a folder that holds an input,
  ``.``/``..`` or any folder above the working directory, and a folder that is missing or read-only;
- ``file``/``folder`` hand out a temporary name beside the destination (same file system, so the
  final rename is atomic) and create it at once, so an unwritable place fails before a C library
  (HDF5, libBigWig) is given it;
- leaving the ``with`` block renames every temporary into place; any failure, Ctrl-C, SIGTERM or
  SIGHUP removes them, and nothing at a destination is touched;
- ``replacing`` rebuilds a file the run already owns (a resumable ``OUT.partial``) under a temporary name
  and renames it over the file when its own block ends;
- a write failure (disk full, file-size limit, read-only file system) becomes one ``SeqliftError``
  naming the destination;
- a run holds a lock (``flock`` on a hidden ``.NAME.seqlift-lock`` beside it) on each destination from the
  moment it claims it until its block ends, so a second run aimed at the same output is refused naming the
  live process, and the final rename checks that the temporary is still the file this run wrote.

A folder output that already exists keeps every file seqlift does not write there: with
``force`` only the files of this run are replaced, and the files an earlier run of the same command left that
this run does not write (a ``hits.bed`` the new scores have no coordinates for, the spacing histogram of a pair
no longer among the top ones) are removed, so the folder never mixes two runs. What a command writes is named
by the patterns it passes as ``owns``; nothing else in the folder is touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import os
import re
import shutil
import signal
from pathlib import Path

try:
    import resource
except ImportError:  # not on Windows
    resource = None

from .errors import SeqliftError

# errno values that mean "this place cannot take the output", reported as one line naming it.
_WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                 errno.EFBIG: "the file-size limit was reached", errno.EROFS: "the file system is read-only",
                 errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EIO: "input/output error"}
# Temporaries of every live Outputs, so a signal handler or interpreter exit can remove them.
_LIVE: list[Outputs] = []
# In-progress files a failed or interrupted run left for --resume (so the last message can name them).
_LEFT_FOR_RESUME: set[Path] = set()
# Set by the command line's signal handler: a library may turn the interruption into an error of its own.
_INTERRUPTED = [False]


def note_interrupted():
    """Say that the process was interrupted (Ctrl-C, SIGTERM, SIGHUP), whatever exception ends the run."""
    _INTERRUPTED[0] = True


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: equal once resolved, or the same inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


class Outputs:
    """The files and folders one run writes. ``inputs``: every path the run reads (model, FASTA, ...)."""

    def __init__(self, inputs=()):
        self.inputs = [Path(p) for p in inputs if p is not None and str(p) != ""]
        self.temporaries: dict[Path, Path] = {}  # temporary → destination, in claim order
        self._kept: set[Path] = set()  # in-progress files a failure leaves for --resume
        self._scratch: set[Path] = set()  # temporaries of open ``replacing`` blocks
        self._approved: set[Path] = set()  # destinations check_file accepted
        self._keep_if_interrupted: set[Path] = set()  # in-progress files with completed work in them
        self._locks: dict[Path, int] = {}  # destination (resolved) → descriptor of its locked lock file
        self._own: dict[Path, int] = {}  # temporary → a descriptor open on the file this run created there
        self._owns: dict[Path, tuple[str, ...]] = {}  # temporary folder → its command's file name patterns

    # ------------------------------------------------------------------ checks before any work
    def check_file(self, path, option="--out", ours=None) -> Path:
        """``path`` as a destination file, refused when it is an input or cannot be written there.

        ours: ``ours(path) -> bool`` says whether an existing file at ``path`` is one seqlift wrote (and so
        may be replaced by a new run). Any other existing file is refused: without ``ours``, every one is
        (a destination this ``Outputs`` already accepted stays accepted).
        """
        if str(path) == "":
            raise SeqliftError(f"{option}: the path is empty; give a file name")
        if str(path).endswith(("/", os.sep)):
            raise SeqliftError(f"{option} {path}: is a folder name; give a file name")
        path = Path(path)
        for source in self.inputs:
            if path.resolve() == source.resolve() or (path.exists() and source.exists() and same_file(path, source)):
                raise SeqliftError(f"{option} {path}: is one of this run's inputs ({source}); choose another output path")
        if path.is_dir():
            raise SeqliftError(f"{option} {path}: is a folder; give a file name")
        self._check_unlocked(path, option)
        if path.exists() and path.resolve() not in self._approved and not (ours is not None and ours(path)):
            raise SeqliftError(f"{option} {path}: exists and was not written by seqlift; move it or choose "
                               "another output name")
        self._check_parent(path, option)
        self._approved.add(path.resolve())
        return path

    def check_folder(self, path, force=False, option="--out") -> Path:
        """``path`` as a destination folder: never an input, a folder holding one, ``.`` or above it."""
        path = Path(path)
        resolved = path.resolve()
        if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
            raise SeqliftError(f"{option} {path}: is the working folder or one above it; give a new folder name")
        if resolved == Path.home().resolve():
            raise SeqliftError(f"{option} {path}: is your home folder; give a new folder name")
        for source in self.inputs:
            if resolved == source.resolve() or _inside(source, path):
                raise SeqliftError(f"{option} {path}: holds this run's input {source}; give a new folder name")
        if path.exists() and not path.is_dir():
            raise SeqliftError(f"{option} {path}: exists and is not a folder")
        self._check_unlocked(path, option)
        if path.is_dir() and any(path.iterdir()) and not force:
            raise SeqliftError(f"{option} {path}: folder exists and is not empty; choose a new folder, or add --force "
                               "to replace only the files seqlift writes there")
        if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):  # found now, not after the work
            raise SeqliftError(f"{option} {path}: folder is not writable; choose another, or change its permissions")
        self._check_parent(path, option)
        return path

    @staticmethod
    def _check_parent(path: Path, option: str):
        parent = path.parent
        if not parent.exists():
            raise SeqliftError(f"{option} {path}: folder {parent} does not exist; create it first")
        if not parent.is_dir():
            raise SeqliftError(f"{option} {path}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise SeqliftError(f"{option} {path}: folder {parent} is not writable")

    # ------------------------------------------------------------------ writing
    def file(self, path, option="--out", ours=None) -> Path:
        """A temporary file (created, empty) that becomes ``path`` when the run succeeds (``ours``: as in
        ``check_file``)."""
        path = self.check_file(path, option, ours)
        tmp = _temporary_name(path, ''.join(path.suffixes[-1:]))
        self._claim(tmp, path, lambda: tmp.open("xb").close())
        return tmp

    def folder(self, path, force=False, option="--out", owns=()) -> Path:
        """A temporary folder whose files go into ``path`` when the run succeeds. owns: ``fnmatch`` patterns of
        every file name the command may write there (``"spacing_*.png"``): when the run succeeds, a file in
        ``path`` matching one that this run did not write is an earlier run's, and is removed."""
        path = self.check_folder(path, force, option)
        tmp = _temporary_name(path)
        self._claim(tmp, path, tmp.mkdir)
        self._owns[tmp] = tuple(owns)
        return tmp

    def partial(self, path, resume: bool, option="--out", ours=None) -> tuple[Path, bool]:
        """The in-progress file ``PATH.partial`` that becomes ``path`` when the run succeeds, and whether it
        existed. Unlike ``file``'s, its name is stable so a killed run (SIGKILL cannot clean up) can be
        continued with ``resume``; a failure removes it unless ``resume`` (then it is kept for the next try).
        ours: as in ``check_file``."""
        path = self.check_file(path, option, ours)
        self._lock(path, option)  # before looking at OUT.partial: a live run's file is not an interrupted one's
        tmp = partial_path(path)
        existed = tmp.exists()
        if existed and not resume:
            raise SeqliftError(f"{option} {path}: an interrupted run's {tmp} exists; add --resume to continue it, "
                               "or remove it to start again")
        self._claim(tmp, path, lambda: None)  # the writer sets it up beside, then renames it here
        if resume:
            self._kept.add(tmp)
        return tmp, existed

    def keep_if_interrupted(self, tmp: Path):
        """Keep the in-progress file ``tmp`` (from ``partial``) when the run is interrupted: it holds completed
        work that ``--resume`` continues. An error still removes it (unless the run was a ``--resume``)."""
        self._keep_if_interrupted.add(Path(tmp))

    def own(self, tmp: Path):
        """Record ``tmp``, a claimed temporary this run has (re)created, as the file to rename at the end (held
        open, so its inode cannot be reused by a file another process puts there)."""
        tmp = Path(tmp)
        if tmp in self._own:
            os.close(self._own.pop(tmp))
        self._own[tmp] = os.open(tmp, os.O_RDONLY)

    def _is_own(self, tmp: Path) -> bool:
        if tmp not in self._own:
            return True
        return os.fstat(self._own[tmp]).st_ino == os.stat(tmp).st_ino

    def _forget_own(self):
        for fd in self._own.values():
            os.close(fd)
        self._own.clear()

    @contextlib.contextmanager
    def replacing(self, path: Path):
        """A temporary name beside ``path`` (a file this run owns, such as its ``OUT.partial``) to build a new
        version under; it replaces ``path`` when the block ends. A failure or signal inside the block
        removes it and leaves ``path`` as it was, so ``path`` only ever exists complete on disk."""
        path = Path(path)
        tmp = _temporary_name(path)
        _remove_stale_temporaries(path)
        self._scratch.add(tmp)
        try:
            yield tmp
            os.replace(tmp, path)
            if path in self.temporaries:
                self.own(path)
        finally:
            self._scratch.discard(tmp)
            tmp.unlink(missing_ok=True)  # there only when the block failed

    def _claim(self, tmp: Path, final: Path, create):
        if final.resolve() in {f.resolve() for f in self.temporaries.values()}:
            raise SeqliftError(f"{final}: two outputs of this run have the same path; give them different names")
        self._lock(final)
        _remove_stale_temporaries(final)
        try:
            create()
        except OSError as exc:
            raise write_error(exc, final) from None
        self.temporaries[tmp] = final
        if tmp.exists():
            self.own(tmp)

    # ------------------------------------------------------------------ one run per destination
    def _check_unlocked(self, path: Path, option: str):
        """Refuse ``path`` while another run holds its lock (this run's own locks are not asked)."""
        if path.resolve() in self._locks:
            return
        lock = _lock_path(path)
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return  # no lock file: nobody writes it (or a folder we cannot read, which the checks report)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            raise SeqliftError(_locked_message(path, fd, option)) from None
        finally:
            os.close(fd)

    def _lock(self, final: Path, option: str = "--out"):
        """Hold ``final``'s lock until this ``Outputs`` ends; refused while another live run holds it."""
        key = final.resolve()
        if key in self._locks:
            return
        lock = _lock_path(final)
        with _signals_deferred():  # a Ctrl-C between creating the lock file and recording it would leave it
            while True:
                try:
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as exc:
                    raise write_error(exc, final) from None
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    message = _locked_message(final, fd, option)
                    os.close(fd)
                    raise SeqliftError(message) from None
                try:  # the lock file we hold must still be the one at the path (its last owner removes it)
                    if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                        break
                except FileNotFoundError:
                    pass
                os.close(fd)
            try:  # the process id, for a second run's message; a full disk fails here, before any output
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(lock)  # while still held, as _release_locks does
                os.close(fd)
                raise write_error(exc, final) from None
            self._locks[key] = fd

    def _release_locks(self):
        with _signals_deferred():
            for key, fd in list(self._locks.items()):
                del self._locks[key]
                with contextlib.suppress(OSError):
                    os.unlink(_lock_path(key))  # while still held, so no run locks a file about to vanish
                os.close(fd)

    def commit(self):
        """Rename every temporary into place (files replace files; a folder's files join the folder)."""
        for tmp, final in list(self.temporaries.items()):
            try:
                own = self._is_own(tmp)
            except FileNotFoundError:
                raise SeqliftError(f"{final}: this run's file {tmp} was removed while the run wrote it; "
                                   "nothing was written") from None
            if not own:  # not ours to rename, nor to remove
                del self.temporaries[tmp]
                raise SeqliftError(f"{final}: {tmp} was replaced by another process while this run wrote it; "
                                   "it was not renamed into place")
            if tmp.is_dir():
                _merge_folder(tmp, final, self._owns.get(tmp, ()))
            else:
                os.replace(tmp, final)
            del self.temporaries[tmp]

    def abort(self, interrupted: bool = False):
        """Remove every temporary; destinations are left as they were. ``interrupted``: the run was stopped
        (Ctrl-C, a signal), so in-progress files with completed work in them are kept for ``--resume``."""
        for tmp in list(self._scratch):
            tmp.unlink(missing_ok=True)
        self._scratch.clear()
        for tmp in list(self.temporaries):
            if tmp in self._kept or (interrupted and tmp in self._keep_if_interrupted):
                _LEFT_FOR_RESUME.add(tmp)
                continue
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        self.temporaries.clear()

    def __enter__(self):
        if not _LIVE:  # a new run: what an earlier one left is not this one's to report
            _LEFT_FOR_RESUME.clear()
        _LIVE.append(self)
        return self

    def __exit__(self, kind, exc, tb):
        try:
            if kind is None:
                try:
                    self.commit()
                except SeqliftError:
                    self.abort()
                    raise
                except OSError as error:
                    destination = self._destination_of(error)
                    self.abort()
                    raise write_error(error, destination) from None
                return False
            destination = self._destination_of(exc) if isinstance(exc, OSError) else None
            failed_write = isinstance(exc, OSError) and _errno(exc) in _WRITE_ERRNOS
            self.abort(interrupted=issubclass(kind, KeyboardInterrupt) or _INTERRUPTED[0])
            if failed_write:
                raise write_error(exc, destination) from None
            return False
        finally:
            self._forget_own()
            self._release_locks()
            if self in _LIVE:
                _LIVE.remove(self)

    def ensure_room(self, tmp: Path, nbytes: int):
        """Refuse to write ``nbytes`` more into the temporary ``tmp`` when the disk or the file-size limit
        cannot take them: HDF5 and libBigWig crash on a failed write, so they must never meet one."""
        nbytes = int(nbytes * 1.1) + (1 << 20)  # format overhead
        destination = self.temporaries.get(tmp, tmp)
        free = shutil.disk_usage(tmp.parent).free
        if nbytes > free:
            raise SeqliftError(f"{destination}: cannot write: the disk is full ({_size(free)} free, "
                               f"the next part needs up to {_size(nbytes)})")
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else -1
        size = tmp.stat().st_size if tmp.exists() else 0  # a resumable OUT.partial is set up beside, then renamed
        if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)) and size + nbytes > limit:
            raise SeqliftError(f"{destination}: cannot write: the file-size limit was reached "
                               f"({_size(limit)}, see ulimit -f)")

    def _destination_of(self, exc: OSError) -> Path | None:
        text = f"{getattr(exc, 'filename', '') or ''} {exc}"
        for tmp, final in self.temporaries.items():
            if tmp.name in text:
                return final
        for final in self.temporaries.values():
            return final
        return None


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends (they are handled right after it)."""
    stop = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    except (AttributeError, ValueError, OSError):  # no POSIX signal masks here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _lock_path(path: Path) -> Path:
    """``.NAME.seqlift-lock`` beside ``path``: the file a run holds locked while it writes ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.seqlift-lock")


def _locked_message(path: Path, fd: int, option: str) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    who = f"process {pid}" if pid.isdigit() else "a live process"
    return (f"{option} {path}: another seqlift run ({who}) is writing it; wait for it to finish, or choose "
            "another output")


def _temporary_name(path: Path, suffix: str = "") -> Path:
    """``.NAME.seqlift-tmp-PID[SUFFIX]`` beside ``path``: hidden, and naming the process that owns it."""
    return path.with_name(f".{path.name}.seqlift-tmp-{os.getpid()}{suffix}")


def _remove_stale_temporaries(path: Path):
    """Remove temporaries for ``path`` left by a seqlift process of this machine that no longer runs (one
    killed by SIGKILL, which no handler sees). A live process's temporaries are left alone."""
    pattern = re.compile(re.escape(f".{path.name}.seqlift-tmp-") + r"(\d+)(\.[^.]*)?")
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return
    for candidate in candidates:
        found = pattern.fullmatch(candidate.name)
        if found and int(found.group(1)) != os.getpid() and not _running(int(found.group(1))):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours to signal
        return True
    return True


def partial_path(out) -> Path:
    """``OUT.partial``: where a resumable run keeps its in-progress file, beside ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.partial")


def _size(nbytes: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"


def _merge_folder(tmp: Path, final: Path, owns: tuple[str, ...] = ()):
    """Move the files of ``tmp`` into ``final``; then remove the files of ``final`` whose names match ``owns`` (the
    command's own outputs) that this run did not write: an earlier run's."""
    if not final.exists() or (final.is_dir() and not any(final.iterdir())):
        os.replace(tmp, final)  # POSIX rename replaces an empty folder
        return
    written = {item.relative_to(tmp) for item in tmp.rglob("*")}
    for item in sorted(tmp.rglob("*")):
        target = final / item.relative_to(tmp)
        if item.is_dir():
            target.mkdir(exist_ok=True)
        else:
            os.replace(item, target)
    shutil.rmtree(tmp)
    for item in final.iterdir():
        if item.is_file() and not item.is_symlink() and item.relative_to(final) not in written \
                and any(fnmatch.fnmatchcase(item.name, pattern) for pattern in owns):
            item.unlink(missing_ok=True)


def _errno(exc: OSError) -> int | None:
    if exc.errno is not None:
        return exc.errno
    found = re.search(r"errno = (\d+)", str(exc))  # HDF5 reports the C errno inside its message
    return int(found.group(1)) if found else None


def write_error(exc: OSError, destination) -> SeqliftError:
    """A write failure as one line naming the destination (not the temporary)."""
    code = _errno(exc)
    reason = _WRITE_ERRNOS.get(code) or (exc.strerror or str(exc).splitlines()[0])
    where = destination if destination is not None else (exc.filename or "output")
    return SeqliftError(f"{where}: cannot write: {reason}")


def silence_late_write_errors():
    """After a write failure is reported, HDF5 objects freed later raise it again from their destructors
    ("Exception ignored in ..."): keep those off the terminal; other unraisable errors still show."""
    import sys

    previous = sys.unraisablehook

    def hook(unraisable):
        exc = unraisable.exc_value
        if not (isinstance(exc, OSError) and _errno(exc) in _WRITE_ERRNOS):
            previous(unraisable)

    sys.unraisablehook = hook


def remove_all_temporaries() -> list[Path]:
    """Remove the temporaries of every live ``Outputs`` (for signal handlers and interpreter exit); returns the
    in-progress files kept for ``--resume``."""
    for outputs in list(_LIVE):
        outputs.abort(interrupted=True)
        outputs._forget_own()
        outputs._release_locks()
    return sorted(path for path in _LEFT_FOR_RESUME if path.exists())
