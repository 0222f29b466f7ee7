"""On-disk cache of results by content hash (graph, precision, target, schedule, version), so a
warm rerun is fast and an interrupted sweep resumes where it stopped. Entries are JSON files
written atomically: a kill leaves either the whole entry or none."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from accelsim.core.fsutil import atomic_write_text
from accelsim.core.version import __version__


def cache_dir(kind: str) -> Path:
    root = os.environ.get("ACCELSIM_CACHE") or Path.home() / ".cache" / "accelsim"
    return Path(root) / kind


def content_key(*parts: Any) -> str:
    """SHA-256 of the JSON of `parts` plus the accelsim version."""
    blob = json.dumps([__version__, *parts], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ResultCache:
    def __init__(self, kind: str, directory: str | os.PathLike | None = None) -> None:
        self.dir = Path(directory) if directory else cache_dir(kind)

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        p = self._path(key)
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: Any) -> None:
        atomic_write_text(self._path(key), json.dumps(value, sort_keys=True))

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
