"""accelsim: what does a quantized neural network cost on a given piece of hardware?

Importing the package is cheap: TVM, ONNX and TFLite are imported only by the functions that
need them.
"""

from accelsim.core.errors import AccelsimError  # noqa: E402
from accelsim.core.qparams import QuantParams
from accelsim.core.version import __version__  # noqa: E402
from accelsim.model.graph import Graph, Node, TensorInfo


def load_model(source: str, **options) -> Graph:
    """A zoo name or a model file (.onnx, .tflite) as a `Graph`."""
    from accelsim.model.loader import load_model as _load

    return _load(source, **options)


def run(graph: Graph, inputs, keep: bool = False) -> dict:
    """Run a graph with the reference executor (integer-only for quantized graphs)."""
    from accelsim.ref.executor import run as _run

    return _run(graph, inputs, keep=keep)


__all__ = [
    "AccelsimError",
    "Graph",
    "Node",
    "QuantParams",
    "TensorInfo",
    "load_model",
    "run",
    "__version__",
]
