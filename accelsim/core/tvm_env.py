"""The one place accelsim imports TVM.

apache-tvm-ffi imports torch unconditionally when it is installed (a workaround for a symbol
clash on one Windows configuration), which costs seconds per process; accelsim never passes
torch tensors to TVM, so the import is made to fail fast for the duration of `import tvm`.
"""

from __future__ import annotations

import sys
from types import ModuleType

_TVM: ModuleType | None = None


def import_tvm() -> ModuleType:
    global _TVM
    if _TVM is None:
        blocked = "torch" not in sys.modules
        if blocked:
            sys.modules["torch"] = None  # type: ignore[assignment]  # import torch -> ImportError
        try:
            import tvm
            import tvm.s_tir  # noqa: F401
            import tvm.te  # noqa: F401
            import tvm.tirx  # noqa: F401
        finally:
            if blocked and sys.modules.get("torch") is None:
                del sys.modules["torch"]
        _TVM = tvm
    return _TVM
