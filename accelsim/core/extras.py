"""Optional parts of accelsim (the extras of pyproject.toml) are imported only where a feature
needs them; a missing one is a user error that names the feature and the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from accelsim.core.errors import AccelsimError


class MissingExtraError(AccelsimError):
    """A feature needs an optional dependency that is not installed."""


def need(module: str, feature: str, extra: str) -> ModuleType:
    """`import module`, or `MissingExtraError`: `<feature> needs the '<extra>' extra: ...`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{feature} needs the '{extra}' extra: pip install 'accelsim[{extra}]'"
        ) from None
