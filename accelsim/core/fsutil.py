"""Atomic file output (a reader never sees a half-written file, even after a kill), safe reads
of user files (every way a file can be unreadable is one `AccelsimError` line naming it), and
names that become file names (they stay inside the output directory)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

# the checkout accelsim runs from: shipped data (targets/, schedules/) lives there
REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_dir(env: str, folder: str) -> Path:
    """`$<env>` when set, else the repository's `<folder>`."""
    value = os.environ.get(env)
    return Path(value) if value else REPO_ROOT / folder


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; on success rename it over `path`. An OS error names
    `path` (a full disk reports no file name of its own)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in _SWEPT:  # a killed run's leftovers go on the first write here
            _SWEPT.add(path.parent)
            remove_stale_temporaries(path.parent)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.pid{os.getpid()}-", suffix=TMP_SUFFIX, dir=path.parent
        )
    except OSError as exc:
        raise _named(exc, path.parent) from None
    # mkstemp creates 0600; give the file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _named(exc, path) from None
        raise


def _named(exc: OSError, path: Path) -> OSError:
    """`exc` naming `path` when it names no file (or only our temporary one)."""
    if exc.filename is not None and not str(exc.filename).endswith(TMP_SUFFIX):
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


# temporary files atomic_open leaves behind only when the process is killed mid-write
TMP_SUFFIX = ".tmp"
_SWEPT: set[Path] = set()  # directories this process has removed stale temporaries from


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> int:
    """Delete the temporary files of atomic_open in `directory` (not below it) whose writer
    process no longer runs (a killed run's leftovers); a concurrent run's live files stay.
    Returns how many were removed."""
    d = Path(directory)
    if not d.is_dir():
        return 0
    removed = 0
    for f in d.glob(f".*{TMP_SUFFIX}"):
        m = re.search(r"\.pid(\d+)-[^./]*" + re.escape(TMP_SUFFIX) + "$", f.name)
        if m is None or int(m.group(1)) == os.getpid() or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            f.unlink()
            removed += 1
    return removed


def safe_name(name: str, default: str = "unnamed") -> str:
    """A model, layer or user name as one file name: [A-Za-z0-9_.-] only, no leading or trailing
    dot (so never `..` or a hidden file), at most 120 characters."""
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)).strip(".")[:120].strip(".")
    return s or default


def check_plain_name(name: str, what: str, error: type[Exception]) -> None:
    """A name the user gives for a directory or file (`report --name`) must be used as is:
    refuse one that would not be (a path, `..`, an empty name)."""
    if not name or safe_name(name, "") != name:
        raise error(
            f"{what} {name!r}: expected a plain name of letters, digits, '_', '-' and '.' "
            f"(not a path; not starting or ending with '.')"
        )


def inside(out_dir: str | os.PathLike, name: str) -> Path:
    """`out_dir / name` for a name that came from a model or a user: sanitised, and checked to
    resolve inside `out_dir` (symbolic links included)."""
    root = Path(out_dir)
    path = root / safe_name(name)
    if not path.resolve().is_relative_to(root.resolve()):
        raise OSError(errno.EACCES, "resolves outside the output directory", str(path))
    return path


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output(
    path: str | os.PathLike, option: str, error: type[Exception], *, directory: bool
) -> None:
    """Before any work: `path` (given as `option`) can become an output directory
    (`directory`) or file: it is not the other kind of thing, and the nearest existing folder
    above it is a writable directory."""
    p = Path(path)
    if p.exists() and p.is_dir() != directory:
        expected = "a directory" if directory else "a file name"
        found = "a directory" if p.is_dir() else "a file"
        raise error(f"{option} {path}: expected {expected}, found {found}")
    base = _first_existing(p.parent)
    if not base.is_dir():
        raise error(f"{option} {path}: {base} is a file (expected a directory above the output)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise error(f"{option} {path}: {base} is not writable (expected a writable directory)")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


# what an OSError a user's paths and disks cause means, and what was expected (any other errno
# is the OS or a bug)
_OS_PROBLEMS = {
    errno.ENOENT: "no such file or directory (expected an existing path)",
    errno.EISDIR: "is a directory (expected a file)",
    errno.ENOTDIR: "a parent is not a directory (expected a directory path)",
    errno.EEXIST: "already exists as something else (expected a free path or a directory)",
    errno.EACCES: "permission denied (expected a path you may read and write)",
    errno.EPERM: "operation not permitted (expected a path you may read and write)",
    errno.EROFS: "read-only file system (expected a writable location)",
    errno.ENOSPC: "no space left on device (expected free space to write)",
    errno.EDQUOT: "disk quota exceeded (expected free space to write)",
    errno.ENAMETOOLONG: "file name too long (expected a shorter path)",
    errno.ELOOP: "too many symbolic links (expected a resolvable path)",
    errno.EFBIG: "file too large for the file system (expected a smaller output)",
}
USER_ERRNOS = frozenset(_OS_PROBLEMS)


def os_problem(exc: OSError) -> str:
    """What an OSError means to a user: `<what> (expected ...)`."""
    return _OS_PROBLEMS.get(exc.errno or -1) or str(exc.strerror or exc).lower()


def read_bytes(path: str | os.PathLike, what: str, error: type[Exception]) -> bytes:
    """A user file's bytes; missing, a directory or unreadable is `error` naming the file."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{path}: is a directory (expected a {what})")
    if not p.exists():
        raise error(f"{path}: no such {what}")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {os_problem(exc)}") from None


def read_text(path: str | os.PathLike, what: str, error: type[Exception]) -> str:
    """A user file as UTF-8 text; a binary file is `error` naming the file."""
    data = read_bytes(path, what, error)
    if b"\0" in data:
        raise error(f"{path}: expected a text {what}, found binary data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: expected a UTF-8 text {what}, found invalid bytes at offset {exc.start}"
        ) from None


def read_yaml(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parse a YAML file; a missing, unreadable or binary file or a syntax error is `error`
    naming the file (and the line)."""
    import yaml

    text = read_text(path, what, error)
    # libyaml's parser when installed (same resolver and constructor as safe_load, ~10x faster:
    # sweeps and reports read every target file)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}") from None


def read_json(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parse a JSON file; unreadable or malformed is `error` naming the file and the line."""
    import json

    text = read_text(path, what, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from None


def read_numpy(path: str | os.PathLike, label: str, error: type[Exception]) -> Any:
    """A .npy as an array, or an .npz as a dict name -> array, read whole and without pickles;
    a missing, empty or unreadable file or an object array is `error` prefixed by `label`."""
    import io
    import zipfile

    import numpy as np

    p = Path(path)
    if p.is_dir():
        raise error(f"{label}: is a directory (expected a .npy/.npz file)")
    if not p.is_file():
        raise error(f"{label}: no such file")
    data = read_bytes(p, ".npy/.npz file", error)
    if not data:
        raise error(f"{label}: empty file (expected a .npy/.npz array)")
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return loaded
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise error(
                f"{label}: holds an object array (expected numeric arrays; pickles are not loaded)"
            ) from None
        raise error(f"{label}: not a readable .npy/.npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise error(f"{label}: not a readable .npy/.npz file ({exc})") from None


# `--allow-nonfinite` (float runs only): NaN and infinity in inputs and weights are let through
ALLOW_NONFINITE: ContextVar[bool] = ContextVar("ALLOW_NONFINITE", default=False)


def check_finite(array: Any, label: str, error: type[Exception]) -> None:
    """Refuse NaN or infinity in a float array: `error` naming `label` and the first bad
    element (unless a float run allows them, `ALLOW_NONFINITE`)."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype.kind not in "fc" or a.size == 0 or ALLOW_NONFINITE.get():
        return
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise error(
            f"{label}: expected finite values, found {a[idx]} at index {list(idx)} "
            f"({int(bad.sum())} non-finite of {a.size}; --allow-nonfinite lets a float run "
            f"take them)"
        )
