"""accelsim: what does a quantized neural network cost on a given piece of hardware?

The Python API (`accelsim.api`, re-exported here): `load_model`, `quantize`, `compile`,
`verify`, `simulate`, `measure`, `sweep`, `report`, `run`. Importing the package is cheap: TVM,
ONNX and TFLite are imported only by the functions that need them.
"""

from accelsim import api as _api
from accelsim.api import *  # noqa: F403 - the API is the package's namespace
from accelsim.core.cost import LayerCost
from accelsim.core.errors import AccelsimError
from accelsim.core.precision import Precision
from accelsim.core.qparams import QuantParams
from accelsim.core.target import Target
from accelsim.core.version import __version__
from accelsim.model.graph import Graph, Node, TensorInfo

__all__ = [
    *_api.__all__,
    "AccelsimError",
    "Graph",
    "LayerCost",
    "Node",
    "Precision",
    "QuantParams",
    "Target",
    "TensorInfo",
    "__version__",
]
