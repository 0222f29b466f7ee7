"""On-disk cache of results by content hash (graph, precision, target, schedule, version), so a
warm rerun is fast and an interrupted sweep resumes where it stopped. Entries are JSON files
written atomically: a kill leaves either the whole entry or none.

An entry is never trusted as read: one that is unreadable, not UTF-8 JSON, holds a NaN or an
infinity, or fails the caller's `check` (the wrong type or shape) is a miss, removed and
recomputed, with one warning. A cache directory that cannot be written (read-only, full, not a
directory) turns the cache off for the rest of the run, with one warning: results are computed
as if uncached."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from accelsim.core.errors import AccelsimWarning
from accelsim.core.fsutil import USER_ERRNOS, atomic_write_text, os_problem
from accelsim.core.version import __version__

T = TypeVar("T")


def cache_dir(kind: str) -> Path:
    root = os.environ.get("ACCELSIM_CACHE") or Path.home() / ".cache" / "accelsim"
    return Path(root) / kind


def content_key(*parts: Any) -> str:
    """SHA-256 of the JSON of `parts` plus the accelsim version."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class CacheWarning(AccelsimWarning):
    """A cache entry or directory that could not be used; the work was done without it."""


# `warn_once` decides what is said once per run; Python's own once-per-place filter must not
# silence the next run in the same process
warnings.filterwarnings("always", category=CacheWarning)


_WARNED: set[str] = set()  # warning topics said in this run
_UNWRITABLE: set[str] = set()  # cache directories found unwritable in this run
_FALLBACK: dict[str, Path] = {}  # kind -> the private directory used instead


def new_run() -> None:
    """Forget what an earlier run in this process warned about or found unwritable (the CLI
    calls it first: each command says its warnings once)."""
    _WARNED.clear()
    _UNWRITABLE.clear()


def warn_once(topic: str, message: str) -> None:
    """One `CacheWarning` per `topic` per run."""
    if topic not in _WARNED:
        _WARNED.add(topic)
        warnings.warn(message, CacheWarning, stacklevel=3)


def writable(directory: str | os.PathLike) -> bool:
    """False once a write into the cache `directory` failed in this run."""
    return str(directory) not in _UNWRITABLE


def go_uncached(directory: str | os.PathLike, exc: OSError) -> None:
    """`directory` cannot be written (`exc`): say so once; the run goes on uncached."""
    _UNWRITABLE.add(str(directory))
    warn_once(
        f"unwritable:{directory}",
        f"cache directory {directory}: {os_problem(exc)}; running uncached",
    )


def private_dir(kind: str) -> Path:
    """A temporary directory of this process for what would have gone into an unwritable
    cache (compiled kernels must live in files to be linked and loaded)."""
    import tempfile

    if kind not in _FALLBACK:
        _FALLBACK[kind] = Path(tempfile.mkdtemp(prefix=f"accelsim-uncached-{kind}-"))
    return _FALLBACK[kind]


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"non-finite number {text}")


def loads_checked(data: bytes) -> Any:
    """JSON from UTF-8 bytes with every number finite (ValueError otherwise)."""
    return json.loads(data.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)


_SCALARS = {"float": (int, float), "int": (int,), "str": (str,), "bool": (bool,)}


def check_fields(cls: type, data: Any) -> dict:
    """`data` as keyword arguments of dataclass `cls`: a mapping with its fields, each scalar
    field (annotated float, int, str, bool, optionally `| None`) of that type; TypeError
    otherwise (an entry of the wrong shape is then a cache miss)."""
    import dataclasses

    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping, found {type(data).__name__}")
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue  # a missing required field fails in the constructor
        kind = str(f.type).replace(" | None", "")
        value = data[f.name]
        if value is None and "None" in str(f.type):
            continue
        ok = _SCALARS.get(kind)
        if ok and (not isinstance(value, ok) or (kind != "bool" and isinstance(value, bool))):
            raise TypeError(f"{f.name}: expected {kind}, found {type(value).__name__}")
    return data


class ResultCache:
    def __init__(self, kind: str, directory: str | os.PathLike | None = None) -> None:
        self.dir = Path(directory) if directory else cache_dir(kind)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str, check: Callable[[Any], T] | None = None) -> Any | None:
        """The entry of `key` (passed through `check`, which raises on the wrong type or
        shape), or None on a miss; an unusable entry is a miss."""
        p = self._path(key)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warn_once(f"unreadable:{p}", f"cache entry {p}: {os_problem(exc)}; recomputed")
            return None
        try:
            value = loads_checked(data)
            return check(value) if check is not None else value
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            warn_once(
                f"corrupt:{p}",
                f"cache entry {p} is unusable ({type(exc).__name__}: {str(exc)[:80]}); recomputed",
            )
            with contextlib.suppress(OSError):
                p.unlink()
            return None

    def put(self, key: str, value: Any) -> None:
        """Store `value`; a directory that cannot be written is warned about once and the run
        goes on uncached."""
        if not writable(self.dir):
            return
        try:
            text = json.dumps(value, sort_keys=True, allow_nan=False)
        except ValueError:
            warn_once(
                f"nonfinite:{key}", f"result {key[:12]} holds a non-finite number: not cached"
            )
            return
        try:
            atomic_write_text(self._path(key), text)
        except OSError as exc:
            if exc.errno not in USER_ERRNOS:
                raise
            go_uncached(self.dir, exc)

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()


def code_fingerprint(*parts: str) -> str:
    """SHA-256 of accelsim's source files under `parts` (sub-package folders, searched
    recursively, or single files, relative to the package), so that a cache entry made by other
    code is never reused, even when the version number stays the same."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for part in parts:
        p = root / part
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise FileNotFoundError(f"code_fingerprint: no source at accelsim/{part}")
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
