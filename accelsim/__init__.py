"""accelsim: what does a quantized neural network cost on a given piece of hardware?

The Python API (`accelsim.api`, re-exported here): `load_model`, `quantize`, `compile`,
`verify`, `simulate`, `measure`, `sweep`, `report`, `run`. Importing the package is cheap: TVM,
ONNX and TFLite are imported only by the functions that need them.
"""

from accelsim.api import (
    CompileResult,
    Measurement,
    Quantized,
    SimulationResult,
    SimulationRun,
    SweepOutcome,
    VerifyResult,
    as_stored,
    compile,  # noqa: A004 - the verb users expect, as `accelsim compile`
    load_model,
    measure,
    precision,
    quantize,
    random_calibration,
    report,
    run,
    simulate,
    sweep,
    target,
    verify,
)
from accelsim.core.cost import LayerCost
from accelsim.core.errors import AccelsimError
from accelsim.core.precision import Precision
from accelsim.core.qparams import QuantParams
from accelsim.core.target import Target
from accelsim.core.version import __version__
from accelsim.model.graph import Graph, Node, TensorInfo

__all__ = [
    "AccelsimError",
    "CompileResult",
    "Graph",
    "LayerCost",
    "Measurement",
    "Node",
    "Precision",
    "QuantParams",
    "Quantized",
    "SimulationResult",
    "SimulationRun",
    "SweepOutcome",
    "Target",
    "TensorInfo",
    "VerifyResult",
    "__version__",
    "as_stored",
    "compile",
    "load_model",
    "measure",
    "precision",
    "quantize",
    "random_calibration",
    "report",
    "run",
    "simulate",
    "sweep",
    "target",
    "verify",
]
