"""The `accelsim` command line. Heavy modules (TVM, ONNX, TFLite) are imported inside the
subcommands so that `accelsim --help` answers at once."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from accelsim import __version__
from accelsim.errors import AccelsimError


def _cmd_models(args: argparse.Namespace) -> int:
    from accelsim.model import zoo
    rows = []
    for name in zoo.MODELS:
        g = zoo.build(name)
        rows.append({"name": name, "params": g.params(), "macs": g.macs(),
                     "input_shape": list(g.tensors[g.inputs[0]].shape)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<18}{'params':>14}{'MACs':>16}  input shape")
    for r in rows:
        print(f"{r['name']:<18}{r['params']:>14,}{r['macs']:>16,}  {tuple(r['input_shape'])}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from accelsim.model.loader import load_model
    from accelsim.runio import load_inputs, random_inputs, save_outputs
    from accelsim.ref.executor import run
    graph = load_model(args.model)
    if args.input:
        feeds = load_inputs(args.input, graph)
        source = args.input
    else:
        feeds = random_inputs(graph, seed=args.seed)
        source = f"seeded random input (seed {args.seed})"
        print(f"no --input given: using a {source}", file=sys.stderr)
    outputs = run(graph, feeds, source=source)
    written = save_outputs(args.output, graph, outputs, dequantize=args.dequantize)
    for name, arr in written.items():
        print(f"{name}: shape {list(arr.shape)} {arr.dtype} -> {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="accelsim",
        description="What does a quantized neural network cost on a given piece of hardware, "
                    "at a given precision?")
    p.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    m = sub.add_parser("models", help="list the built-in model zoo with parameter and MAC counts")
    m.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    m.set_defaults(func=_cmd_models)

    r = sub.add_parser("run", help="run a model with the integer-only reference executor")
    r.add_argument("model", help="zoo name (see `accelsim models`) or an .onnx / .tflite file")
    r.add_argument("--input", help="input .npy (one-input models) or .npz (keys: input names "
                                   "or in0, in1, ...); default: seeded random data")
    r.add_argument("--output", required=True,
                   help="Y.npy for a one-output model, Y.npz for any (keys out0, out1, ...)")
    r.add_argument("--dequantize", action="store_true",
                   help="write quantized outputs as float (scale * (q - zero_point))")
    r.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    r.set_defaults(func=_cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accelsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
