"""Atomic file output: a reader never sees a half-written file, even after a kill."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
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
    """Open a temporary file beside `path`; on success rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def read_yaml(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parse a YAML file; a missing file or a syntax error is `error` naming the file (and
    the line)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise error(f"{path}: no such {what}")
    # libyaml's parser when installed (same resolver and constructor as safe_load, ~10x faster:
    # sweeps and reports read every target file)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(p.read_text(), Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}") from None


def read_numpy(path: str | os.PathLike, label: str, error: type[Exception]) -> Any:
    """np.load without pickles; a missing or unreadable file is `error` prefixed by `label`."""
    import zipfile

    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise error(f"{label}: no such file")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise error(f"{label}: not a readable .npy/.npz file ({exc})") from None
