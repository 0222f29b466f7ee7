"""The `accelsim` command line. Heavy modules (TVM, ONNX, TFLite) are imported inside the
subcommands so that `accelsim --help` answers at once."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

from accelsim.core.errors import AccelsimError, InputError
from accelsim.core.version import __version__


def _cmd_models(args: argparse.Namespace) -> int:
    from accelsim.model import zoo

    rows = []
    for name in zoo.MODELS:
        params, macs, shape = zoo.summary(name)
        rows.append({"name": name, "params": params, "macs": macs, "input_shape": list(shape)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<18}{'params':>14}{'MACs':>16}  input shape")
    for r in rows:
        print(f"{r['name']:<18}{r['params']:>14,}{r['macs']:>16,}  {tuple(r['input_shape'])}")
    return 0


def _cmd_targets(args: argparse.Namespace) -> int:
    from accelsim.core.precision import parse_precision
    from accelsim.core.target import list_targets

    targets = list_targets()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "kind": t.kind,
                        "description": t.description,
                        "vector_bits": t.codegen.vector_bits,
                        "features": list(t.codegen.features),
                        "precisions": {p: t.how(parse_precision(p)) for p in t.precisions()},
                        "file": t.path,
                    }
                    for t in targets
                ],
                indent=2,
            )
        )
        return 0
    w = max([len(t.name) for t in targets] + [6]) + 2  # the longest name sets the column
    k = max([len(t.kind) for t in targets] + [4]) + 2
    print(
        f"{'target':<{w}}{'kind':<{k}}{'vector':>7}  {'precisions (native; emulated*)':<50}description"
    )
    for t in targets:
        precs = ", ".join(
            list(t.codegen.native)
            + [p + "*" for p in t.codegen.emulation if p not in t.codegen.native]
        )
        vb = f"{t.codegen.vector_bits}b"
        print(f"{t.name:<{w}}{t.kind:<{k}}{vb:>7}  {precs:<50}{t.description}")
    return 0


def _write_json(path: str | None, doc) -> None:
    if path:
        from accelsim.core.fsutil import atomic_write_text

        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


@contextlib.contextmanager
def _bars():
    """A progress factory for the API: each long step gets a tqdm bar, all closed at the end."""
    from accelsim.core.progress import progress_bar

    with contextlib.ExitStack() as stack:
        yield lambda total, desc, unit="it": stack.enter_context(progress_bar(total, desc, unit))


def _print_costs(run) -> None:
    print(f"\n{run.model} on {run.target} at {run.precision} ({run.fidelity} fidelity)")
    print(
        f"{'layer':<28}{'op':<18}{'MACs':>13}{'cycles':>13}{'us':>10}{'uJ':>10}  bound    util  ran"
    )
    for c in run.layers:
        if c.cycles == 0:
            continue
        print(
            f"{c.name[:27]:<28}{c.op[:17]:<18}{c.macs:>13,}{c.cycles:>13,.0f}"
            f"{c.latency_s * 1e6:>10.1f}{c.energy_j * 1e6:>10.2f}  {c.bound:<8}"
            f"{c.utilization:>5.0%}  {c.ran}"
        )
    print(
        f"{'total':<46}{run.macs:>13,}{run.total_cycles:>13,.0f}"
        f"{run.total_latency_s * 1e6:>10.1f}{run.total_energy_j * 1e6:>10.2f}"
    )
    if run.coverage is not None:
        print(run.coverage.text())


def _check_outputs(args: argparse.Namespace, **options: bool) -> None:
    """Every output option (attribute -> is a directory) checked before any work."""
    from accelsim.core.fsutil import check_output

    for attr, is_dir in options.items():
        value = getattr(args, attr, None)
        if value:
            check_output(value, "--" + attr.replace("_", "-"), InputError, directory=is_dir)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from accelsim import api

    _check_outputs(args, json=False)

    result = api.simulate(
        args.model, args.target, args.precision, fidelity=args.fidelity, input_size=args.input_size
    )
    for run in result.runs:
        _print_costs(run)
    _write_json(args.json, result.to_json())
    return 0


def _print_measurement(m) -> None:
    run = m.run
    print(
        f"\n{run.model} on {run.target} at {run.precision} (measured: {m.statistic} of "
        f"{m.repeat} passes after {m.warmup} warm-up, {m.clock} clock, 1 thread; energy "
        f"not measured)"
    )
    print(f"{'layer':<28}{'op':<18}{'MACs':>13}{'measured us':>13}{'analytic us':>13}{'ratio':>8}")
    pred_sum = 0.0
    for c, a in zip(run.layers, m.predicted):
        if c.name in m.unmeasured:
            print(
                f"{c.name[:27]:<28}{c.op[:17]:<18}{c.macs:>13,}{'-':>13}"
                f"{a.latency_s * 1e6:>13.1f}{'':>8}  (not measured: no kernel)"
            )
            continue
        if c.latency_s == 0:
            continue
        pred_sum += a.latency_s
        print(
            f"{c.name[:27]:<28}{c.op[:17]:<18}{c.macs:>13,}{c.latency_s * 1e6:>13.1f}"
            f"{a.latency_s * 1e6:>13.1f}{a.latency_s / c.latency_s:>8.2f}"
        )
    total = run.total_latency_s
    ratio = pred_sum / total if total else float("nan")
    print(
        f"{'total (measured layers)':<46}{run.macs:>13,}"
        f"{total * 1e6:>13.1f}{pred_sum * 1e6:>13.1f}{ratio:>8.2f}"
    )


def _cmd_measure(args: argparse.Namespace) -> int:
    from accelsim import api

    _check_outputs(args, json=False)

    with _bars() as progress:
        results = api.measure(
            args.model,
            args.precision,
            args.target,
            repeat=args.repeat,
            warmup=args.warmup,
            statistic=args.statistic,
            clock=args.clock,
            input_size=args.input_size,
            progress=progress,
        )
    for m in results:
        _print_measurement(m)
    _write_json(args.json, [m.to_json() for m in results])
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from accelsim import api

    _check_outputs(args, out=True)

    result = api.report(
        args.model or (),
        args.target or (),
        args.precision or (),
        input_size=args.input_size,
        fidelity=args.fidelity,
        name=args.name,
        out=args.out,
        accuracy=args.accuracy or None,
        use_cache=not args.no_cache,
        kernel_efficiency=args.kernel_efficiency or None,
    )
    print(
        f"report: {len(result.files)} files in {result.out_dir}/ (index.html, report.md, "
        f"summary.csv, layers.csv, ...)"
    )
    print(
        f"report: {result.runs} simulations ({result.cached_runs} from the cache), wall time "
        f"{result.wall_s:.1f} s"
    )
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from accelsim import api
    from accelsim.dse.sweep import load_grid_yaml, parse_grid_args

    _check_outputs(args, out=True)

    grid, sample, seed = ({}, args.sample, args.seed)
    if args.config:
        grid, file_sample, seed = load_grid_yaml(args.config)
        sample = args.sample if args.sample is not None else file_sample
    for key, values in parse_grid_args(args.grid or []).items():
        grid[key] = values
    with _bars() as progress:
        result = api.sweep(
            tuple(args.model or ["mobilenet_v2"]),
            args.target,
            grid,
            sample=sample,
            seed=seed,
            input_size=args.input_size,
            fidelity=args.fidelity,
            workers=args.workers,
            scheduler=args.scheduler,
            objectives=tuple(o.strip() for o in args.objectives.split(",") if o.strip()),
            accuracy_samples=args.accuracy_samples,
            out=args.out,
            progress=progress,
        )
    print(
        f"{len(result.points)} points ({result.computed} computed, {result.cached} from the "
        f"cache) in {result.wall_s:.1f} s at {result.fidelity} fidelity; {len(result.pareto)} "
        f"on the Pareto front"
    )
    for f in result.files:
        print(f"  {f}")
    return 0


def _cmd_mixed_search(args: argparse.Namespace) -> int:
    import numpy as np

    from accelsim.core.errors import InputError
    from accelsim.core.precision import parse_precision_list
    from accelsim.core.target import load_target
    from accelsim.dse.mixed_search import (
        AccuracyBudget,
        check_inputs,
        digits_problem,
        format_result,
        mixed_search,
        write_outputs,
    )
    from accelsim.model.loader import load_model
    from accelsim.quant import calibdata

    _check_outputs(args, out=True)
    target = load_target(args.target)  # every check before any work
    candidates = parse_precision_list(args.precisions, "--precisions")
    budget = AccuracyBudget(max_drop=args.max_drop, min_snr_db=args.min_snr_db)
    labelled = args.calib_dataset is not None
    check_inputs(target, candidates, args.objective, budget, labelled)
    if args.eval_split not in ("val", "test"):
        raise InputError(f"--eval-split {args.eval_split}: expected val or test")
    if args.train_epochs and not labelled:
        raise InputError("--train-epochs needs --calib-dataset digits (the training split)")
    if args.calib_dataset is not None and args.calib_dataset not in calibdata.DATASETS:
        raise InputError(
            f"--calib-dataset {args.calib_dataset}: unknown data set; available: "
            f"{', '.join(calibdata.DATASETS)}"
        )
    graph = load_model(args.model, input_size=args.input_size)
    if graph.is_quantized:
        raise InputError(f"{args.model}: mixed-search needs a float model, found a quantized one")
    if labelled:
        prob = digits_problem(graph, args.train_epochs, seed=args.seed, split=args.eval_split)
        graph, data, x, y, source = prob.graph, prob.data, prob.x, prob.y, prob.description
    else:
        data = (
            calibdata.from_npy(args.calib_data, graph)
            if args.calib_data
            else calibdata.random(graph, args.calib_random or 32, seed=args.seed)
        )
        x, y = np.concatenate(data.samples), None
        source = f"{data.source}; SNR against float on the same inputs"
    print(f"data: {source}", file=sys.stderr)
    result = mixed_search(
        graph,
        target,
        candidates,
        args.objective,
        budget,
        data,
        x,
        y,
        calibration=args.calibration,
        fidelity=args.fidelity,
        log=lambda m: print(m, file=sys.stderr),
    )
    print(format_result(result))
    for f in write_outputs(result, args.out):
        print(f"  {f}")
    return 0 if result.met else 1


def _target_and_model(args: argparse.Namespace, calib_random: int):
    """compile / verify: the target and the model (quantized when --precision asks), every
    check before any work."""
    from accelsim import api

    t = api.target(args.target)
    if args.precision:
        t.check_precision(api.precision(args.precision, "--precision"))
    return t, _quantized(args, calib_random=calib_random, input_size=args.input_size)


def _cmd_compile(args: argparse.Namespace) -> int:
    from accelsim import api

    _check_outputs(args, out=True)
    t, graph = _target_and_model(args, calib_random=1)
    with _bars() as progress:
        done = api.compile(graph, t, args.precision, args.out, progress=progress)
    print(
        f"{done.model} {done.precision} on {done.target}: {done.kernels} kernels "
        f"({done.distinct} distinct after deduplication) -> {args.out}/kernels.json; "
        f"cache {dict(done.cache)}"
    )
    print(done.coverage.text())
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from accelsim import api

    _check_outputs(args, json=False)
    t, graph = _target_and_model(args, calib_random=2)
    with _bars() as progress:
        result = api.verify(graph, t, args.precision, seed=args.seed, progress=progress)
    # the name column as wide as the longest name (exporters' names run to 60 characters)
    width = max([32, *(len(c.name) + 1 for c in result.layers)])
    for c in result.layers:
        print(f"{c.name:<{width}}{c.op:<18}{c.mismatches:>10} / {c.elements} differ")
    print(
        f"{result.model} {result.precision} on {result.target}: {len(result.layers)} kernels, "
        f"{result.mismatches} of {result.elements} elements differ"
    )
    doc = result.to_json()
    _write_json(args.json, {k: doc[k] for k in ("mismatches", "elements", "layers")})
    return 0 if result.ok else 1


def _add_quant_args(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group(
        "quantization (post-training; a zoo name or float model plus "
        "--precision is quantized on the fly)"
    )
    g.add_argument(
        "--precision",
        required=required,
        help="w8a8, w4a8, w8a4, w16a16, w4a4, fp32, fp16 (options after '/': "
        "per-tensor, asym, unsigned, weight-only, ...); a model with stored quantization runs "
        "as stored",
    )
    g.add_argument(
        "--weights",
        choices=["per-channel", "per-tensor"],
        help="weight granularity (default per-channel)",
    )
    sym = g.add_mutually_exclusive_group()
    sym.add_argument(
        "--symmetric",
        dest="symmetric",
        action="store_true",
        default=None,
        help="symmetric weights (default)",
    )
    sym.add_argument(
        "--asymmetric", dest="symmetric", action="store_false", help="asymmetric (affine) weights"
    )
    g.add_argument(
        "--calibration",
        default="minmax",
        help="minmax | ema | percentile:99.99 | entropy | entropy_trt | entropy_ort | mse "
        "(default minmax)",
    )
    src = g.add_mutually_exclusive_group()
    src.add_argument("--calib-data", metavar="X.npy", help="calibration inputs, shape (N, ...)")
    src.add_argument(
        "--calib-random",
        metavar="N",
        type=_positive,
        help="N seeded random inputs (timing studies only; labelled in outputs)",
    )
    src.add_argument(
        "--calib-dataset", metavar="NAME", help="a data set the project ships access to: digits"
    )
    g.add_argument("--mixed", metavar="FILE.yaml", help="per-layer precision overrides")


def _quantized(
    args: argparse.Namespace, calib_random: int = 0, input_size=None, allow_stored: bool = True
):
    """The model for compile / verify / run / quantize: loaded, and quantized when --precision
    asks for it (the inline quantize stage), every check before any work."""
    from accelsim import api

    graph = api.load_model(args.model, input_size)
    if not args.precision and args.precision is not None:
        raise InputError("--precision '': expected a precision such as w8a8 or fp32")
    if args.precision is None:
        return graph
    if args.calib_data:
        data = args.calib_data
    elif args.calib_dataset:
        from accelsim.quant import calibdata

        data = calibdata.from_dataset(args.calib_dataset, graph)
    elif args.calib_random or calib_random:
        data = (
            None
            if graph.is_quantized
            else api.random_calibration(graph, args.calib_random or calib_random)
        )
    else:
        data = None
    prec = api.precision(args.precision, "--precision")
    if graph.is_quantized and allow_stored:  # runs as stored; another precision is refused
        api.as_stored(graph, prec)
        return graph
    if prec.is_float and data is None:
        data = api.random_calibration(graph, 1)
    if data is None:
        raise InputError(
            "--precision needs calibration data: --calib-data X.npy, "
            "--calib-dataset NAME or --calib-random N"
        )
    with _bars() as progress:
        return api.quantize(
            graph,
            prec,
            data=data,
            calibration=args.calibration,
            weights=args.weights,
            symmetric=args.symmetric,
            mixed=args.mixed,
            progress=progress,
        ).graph


def _cmd_tune(args: argparse.Namespace) -> int:
    import numpy as np

    from accelsim import api
    from accelsim.core.errors import InputError
    from accelsim.core.fsutil import read_numpy
    from accelsim.dse.tune import DEFAULT_CALIBRATORS, format_result, tune, write_outputs
    from accelsim.quant import calibdata, tasks

    _check_outputs(args, out=True)
    targets = [api.target(t) for t in args.target.split(",")]  # every check before any work
    p, high = api.precision(args.precision, "--precision"), api.precision(args.high, "--high")
    calibrators = [c.strip() for c in args.calibrators.split(",")] if args.calibrators else []
    from accelsim.quant.calibrate import make_calibrator

    for c in calibrators:  # a typo costs one line, before the data is read
        make_calibrator(c)
    labelled = args.dataset is not None or args.val_labels is not None
    if not labelled and args.min_snr_db is None:
        raise InputError(
            "tune without labels scores the output SNR against float: give the budget as "
            "--min-snr-db DB (or labels: --val-labels Y.npy, or --dataset text)"
        )
    if labelled and args.min_snr_db is not None:
        raise InputError("--min-snr-db is the budget without labels; with labels use --max-drop")
    graph = api.load_model(args.model, input_size=args.input_size)
    if graph.is_quantized:
        raise InputError(f"{args.model}: tune starts from a float model, found a quantized one")
    if args.dataset is not None:
        if args.dataset != "text":
            raise InputError(f"--dataset {args.dataset}: expected text (rendered text lines)")
        task = tasks.text_task(args.model, args.calib_n, args.val_n, seed=args.seed)
    else:
        if not (args.calib_data and args.val_data):
            raise InputError(
                "tune needs data: --dataset text (packaged OCR models), or --calib-data X.npy "
                "and --val-data X.npy (with --val-labels Y.npy for top-1, else output SNR)"
            )
        data = calibdata.from_npy(args.calib_data, graph)
        x_val = np.concatenate(calibdata.from_npy(args.val_data, graph).samples)
        labels = None
        if args.val_labels:
            labels = read_numpy(args.val_labels, f"--val-labels {args.val_labels}", InputError)
            if not isinstance(labels, np.ndarray):
                raise InputError(f"--val-labels {args.val_labels}: expected a .npy array")
        task = tasks.array_task(graph, data, x_val, labels, f"--val-data {args.val_data}")
    per_unit = task.points_per_unit
    print(f"data: {task.description}", file=sys.stderr)
    result = tune(
        graph,
        task.calibration,
        task.x_val,
        task.metric,
        precision=p,
        calibrators=tuple(calibrators) or DEFAULT_CALIBRATORS,
        max_drop=args.max_drop / per_unit,
        min_score=args.min_snr_db,
        high=high,
        targets=targets,
        fidelity=args.fidelity,
        sensitivity_samples=args.sensitivity_samples,
        candidates=args.candidates,
        ranking=args.ranking,
        prefer=args.prefer,
        log=lambda m: print(m, file=sys.stderr),
    )
    print(format_result(result, per_unit))
    for f in write_outputs(result, args.out):
        print(f"  {f}")
    return 0 if result.met else 1


def _cmd_quantize(args: argparse.Namespace) -> int:
    from accelsim.model.onnx_export import export_onnx

    _check_outputs(args, out=False)

    graph = _quantized(args, allow_stored=False)
    export_onnx(graph, args.out)
    print(f"{graph.name}: {args.precision} -> {args.out}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from accelsim.model.io import check_output_path, load_inputs, random_inputs, save_outputs
    from accelsim.ref.executor import run

    check_output_path(args.output)  # before any work, so a typo costs nothing
    _check_outputs(args, output=False)
    if args.allow_nonfinite:
        return _run_allowing_nonfinite(args)
    graph = _quantized(args)
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


def _run_allowing_nonfinite(args: argparse.Namespace) -> int:
    """`run --allow-nonfinite`: NaN and infinity pass the boundary, for float runs only (an
    integer network has no value for them)."""
    from accelsim import api
    from accelsim.core.fsutil import ALLOW_NONFINITE

    if args.precision is not None and not api.precision(args.precision, "--precision").is_float:
        raise InputError(
            f"--allow-nonfinite: applies to float runs; --precision {args.precision} quantizes"
        )
    token = ALLOW_NONFINITE.set(True)
    try:
        graph = api.load_model(args.model, None)
        if graph.is_quantized:
            raise InputError(
                f"--allow-nonfinite: applies to float runs; model {args.model} is quantized"
            )
        args.allow_nonfinite = False
        return _cmd_run(args)
    finally:
        ALLOW_NONFINITE.reset(token)


def _add_model_target(p: argparse.ArgumentParser, input_size: bool = True) -> None:
    p.add_argument("model", help="zoo name or a model file (.onnx, .tflite)")
    p.add_argument("--target", required=True, help="shipped target name or a target .yaml")
    if input_size:
        p.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, found {value}")
        return value

    return parse


_positive = _int_at_least(1, "a positive integer")
_natural = _int_at_least(0, "an integer >= 0")


def _finite(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, found {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """A usage error is one line, like every other user error (`--help` shows the usage)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"accelsim: error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="accelsim",
        description="What does a quantized neural network cost on a given piece of hardware, "
        "at a given precision?",
    )
    p.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    m = sub.add_parser("models", help="list the built-in model zoo with parameter and MAC counts")
    m.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    m.set_defaults(func=_cmd_models)

    t = sub.add_parser("targets", help="list the shipped hardware targets")
    t.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    t.set_defaults(func=_cmd_targets)

    r = sub.add_parser("run", help="run a model with the integer-only reference executor")
    r.add_argument("model", help="zoo name (see `accelsim models`) or an .onnx / .tflite file")
    r.add_argument(
        "--input",
        help="input .npy (one-input models) or .npz (keys: input names "
        "or in0, in1, ...); default: seeded random data",
    )
    r.add_argument(
        "--output",
        required=True,
        help="Y.npy for a one-output model, Y.npz for any (keys out0, out1, ...)",
    )
    r.add_argument(
        "--dequantize",
        action="store_true",
        help="write quantized outputs as float (scale * (q - zero_point))",
    )
    r.add_argument("--seed", type=_natural, default=0, help="seed of the random input (default 0)")
    r.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="let NaN and infinity in inputs and weights through (float runs only)",
    )
    _add_quant_args(r, required=False)
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser(
        "compile",
        help="lower a model through TVM: per-layer assembly and "
        "object files (accelerators: program .asm / .bin) and "
        "kernels.json",
    )
    _add_model_target(c)
    c.add_argument("--out", required=True, metavar="DIR")
    _add_quant_args(c, required=False)
    c.set_defaults(func=_cmd_compile)

    v = sub.add_parser(
        "verify",
        help="run every generated kernel on its target (TVM runtime, "
        "qemu or the accelerator's simulator) against the "
        "reference executor",
    )
    _add_model_target(v)
    v.add_argument("--seed", type=_natural, default=0, help="seed of the random model input")
    v.add_argument("--json", metavar="PATH", help="write {mismatches, elements, layers} as JSON")
    _add_quant_args(v, required=False)
    v.set_defaults(func=_cmd_verify)

    s = sub.add_parser("simulate", help="per-layer latency and energy on a target, per precision")
    _add_model_target(s, input_size=False)
    s.add_argument(
        "--precision",
        help="comma-separated, e.g. fp32,w8a8,w4a8 (a model with stored quantization: as stored)",
    )
    s.add_argument(
        "--fidelity",
        choices=["codegen", "analytic"],
        help="codegen: cycles from the TVM-generated code (CPU/DSP: assembly, trip "
        "counts, pipe model; accelerator: its instruction-level simulator); "
        "analytic: operator shapes and the target's documented numbers, no "
        "compilation (default: analytic on CPU/DSP, codegen on accelerators)",
    )
    s.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    s.add_argument("--json", metavar="PATH", help="write the results as JSON")
    s.set_defaults(func=_cmd_simulate)

    me = sub.add_parser(
        "measure",
        help="run the compiled kernels on this machine and report "
        "measured seconds per layer (next to the analytic "
        "prediction)",
    )
    me.add_argument("model", help="zoo name or a model file")
    me.add_argument(
        "--target",
        default="host",
        help="a target of kind 'host' (default host: only this machine can be measured)",
    )
    me.add_argument(
        "--precision",
        help="comma-separated, e.g. fp32,w8a8 (a model with stored quantization: as stored)",
    )
    me.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    me.add_argument(
        "--repeat",
        type=_positive,
        default=10,
        help="timed whole-network passes; a layer's time is the median (default 10)",
    )
    me.add_argument("--warmup", type=_natural, default=2, help="untimed passes first (default 2)")
    me.add_argument(
        "--statistic",
        choices=["median", "min"],
        default="median",
        help="per-layer reduction of the passes (min: the least disturbed pass, "
        "for a shared or busy machine)",
    )
    me.add_argument(
        "--clock",
        choices=["wall", "thread"],
        default="wall",
        help="wall time, or CPU time of the measuring thread (leaves out time the "
        "OS gave other processes)",
    )
    me.add_argument(
        "--json",
        metavar="PATH",
        help="write the results as JSON (the shape `simulate` writes, fidelity 'measured')",
    )
    me.set_defaults(func=_cmd_measure)

    rp = sub.add_parser(
        "report",
        help="cost report (HTML, Markdown, CSV, JSON, PNG plots) of models x targets x precisions",
    )
    rp.add_argument(
        "--model",
        action="append",
        metavar="MODEL",
        help="zoo name or float model file (repeatable; default mobilenet_v1, "
        "mobilenet_v2, resnet50)",
    )
    rp.add_argument(
        "--target",
        action="append",
        metavar="TARGET",
        help="shipped target name or .yaml (repeatable; default every shipped "
        "CPU, DSP and accelerator target)",
    )
    rp.add_argument(
        "--precision",
        metavar="P1,P2",
        help="comma-separated (default: every precision each target supports)",
    )
    rp.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    rp.add_argument("--name", default="default", help="report name (default 'default')")
    rp.add_argument("--out", metavar="DIR", help="output directory (default reports/NAME/)")
    rp.add_argument(
        "--fidelity",
        choices=["codegen", "analytic"],
        help="codegen or analytic (see `simulate`; default: analytic on CPU/DSP, "
        "codegen = the instruction-level simulator on accelerators)",
    )
    rp.add_argument(
        "--accuracy",
        metavar="FILE.json",
        default="reports/accuracy.json",
        help="accuracy-study results for the accuracy-vs-cost figure ('' for none)",
    )
    rp.add_argument(
        "--kernel-efficiency",
        metavar="FILE.json",
        default="reports/kernel_efficiency.json",
        help="benchmarks/kernel_efficiency.py's results for the kernel-efficiency section "
        "('' for none)",
    )
    rp.add_argument(
        "--no-cache", action="store_true", help="ignore and do not write the result cache"
    )
    rp.set_defaults(func=_cmd_report)

    w = sub.add_parser(
        "sweep",
        help="design-space sweep over target fields and precisions (any kind of target), with "
        "Pareto fronts and an interactive page",
    )
    w.add_argument("--model", action="append", help="zoo model (repeatable; default mobilenet_v2)")
    w.add_argument(
        "--target", default="simd-accel", help="base target (default simd-accel): any kind"
    )
    w.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="a grid axis (repeatable): accelerator parameters (lanes=16,32,64), target-file "
        "fields as dotted paths (timing.pipes.vector=1,2, memory.levels.L2.size_bytes=262144, "
        "codegen.features=+dotprod,-dotprod, timing.hardware_threads=2,3,4) or "
        "precision=w4a4,w8a8",
    )
    w.add_argument(
        "--config", metavar="SWEEP.yaml", help="grid from a YAML file (grid:, sample:, seed:)"
    )
    w.add_argument(
        "--sample", type=_positive, help="evaluate a seeded random sample of N grid points"
    )
    w.add_argument("--seed", type=_natural, default=0)
    w.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    w.add_argument("--workers", type=_positive, help="local processes (default: all cores)")
    w.add_argument("--scheduler", metavar="ADDRESS", help="run on a Dask cluster (dask extra)")
    w.add_argument(
        "--fidelity",
        choices=["analytic", "codegen"],
        default="analytic",
        help="analytic (default: shapes + recipe, milliseconds per point) or codegen "
        "(TVM-compiled programs on the instruction-level simulator, seconds per "
        "point); cached separately",
    )
    w.add_argument(
        "--objectives",
        default="latency_s,energy_j",
        help="the Pareto front's objectives, a subset of latency_s, energy_j, area_mm2, "
        "accuracy_noise",
    )
    w.add_argument(
        "--accuracy-samples",
        type=int,
        default=0,
        metavar="N",
        help="add accuracy_noise per model and precision: the output noise ratio predicted "
        "from per-layer sensitivities on N seeded random inputs (slow at full input size)",
    )
    w.add_argument("--out", required=True, metavar="DIR")
    w.set_defaults(func=_cmd_sweep)

    ms = sub.add_parser(
        "mixed-search",
        help="per-layer precisions that minimise latency or "
        "energy on a target within an accuracy budget, "
        "verified by measurement",
    )
    ms.add_argument("model", help="zoo name or a float model file")
    ms.add_argument("--target", required=True, help="shipped target name or a target .yaml")
    ms.add_argument(
        "--precisions",
        default="w4a4,w4a8,w8a8",
        help="candidate precisions, comma-separated (default w4a4,w4a8,w8a8)",
    )
    ms.add_argument("--objective", default="latency", help="latency or energy (default latency)")
    ms.add_argument(
        "--max-drop",
        type=_finite,
        default=1.0,
        help="top-1 budget: at most this many percentage points below float "
        "(default 1.0; needs --calib-dataset)",
    )
    ms.add_argument(
        "--min-snr-db",
        type=_finite,
        help="budget as output SNR against float in dB instead (no labels needed)",
    )
    msrc = ms.add_mutually_exclusive_group()
    msrc.add_argument(
        "--calib-dataset",
        metavar="NAME",
        help="labelled data the project ships: digits (calibration images, "
        "scores on the validation split)",
    )
    msrc.add_argument("--calib-data", metavar="X.npy", help="calibration inputs (SNR budget)")
    msrc.add_argument(
        "--calib-random",
        metavar="N",
        type=_positive,
        help="N seeded random inputs (SNR budget; default 32)",
    )
    ms.add_argument(
        "--train-epochs",
        type=_natural,
        default=0,
        help="first train the float model this many epochs on the digits training "
        "split (zoo models have random weights; the accuracy study uses 20)",
    )
    ms.add_argument(
        "--eval-split",
        default="val",
        help="digits split the budget is measured on: val (189 images, default) or "
        "test (540: finer, but no longer held out)",
    )
    ms.add_argument("--calibration", default="minmax", help="calibration method (default minmax)")
    ms.add_argument(
        "--fidelity",
        choices=["codegen", "analytic"],
        help="cost fidelity (default: analytic on CPU/DSP, the instruction-level "
        "simulator on accelerators)",
    )
    ms.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    ms.add_argument("--seed", type=_natural, default=0, help="data and training seed (default 0)")
    ms.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="writes MODEL_TARGET_OBJECTIVE_mixed.yaml (for --mixed) and ..._mixed_search.json",
    )
    ms.set_defaults(func=_cmd_mixed_search)

    tu = sub.add_parser(
        "tune",
        help="Wu et al.'s workflow on a float model: the best calibrator on validation "
        "data, then the most sensitive operators kept high until the accuracy budget holds, "
        "every step costed",
    )
    tu.add_argument("model", help="zoo name, packaged model (ppocr_cls, ppocr_rec) or float file")
    tu.add_argument(
        "--target", required=True, help="target(s) each step is costed on, comma-separated"
    )
    tu.add_argument("--precision", default="w8a8", help="the quantized precision (default w8a8)")
    tu.add_argument(
        "--high",
        default="fp32",
        help="precision of the layers kept high: fp32 (partial quantization, default) or a "
        "16-bit one such as w16a16",
    )
    tu.add_argument(
        "--calibrators",
        help="calibrators tried, comma-separated (default minmax,percentile:99.99,"
        "percentile:99.999,entropy,mse)",
    )
    tu.add_argument(
        "--max-drop",
        type=_finite,
        default=1.0,
        help="budget below float: percentage points of the metric (dB for the SNR metric); "
        "default 1.0",
    )
    tu.add_argument(
        "--min-snr-db",
        type=_finite,
        help="budget without labels: output SNR against float of at least this many dB",
    )
    tu.add_argument(
        "--dataset",
        help="labelled data the project renders: text (the packaged OCR models: orientation "
        "top-1 for ppocr_cls, CTC exact match for ppocr_rec)",
    )
    tu.add_argument("--calib-n", type=_positive, default=64, help="--dataset: calibration samples")
    tu.add_argument("--val-n", type=_positive, default=96, help="--dataset: validation samples")
    tu.add_argument("--calib-data", metavar="X.npy", help="calibration inputs (N, *input[1:])")
    tu.add_argument("--val-data", metavar="X.npy", help="validation inputs (N, *input[1:])")
    tu.add_argument(
        "--val-labels",
        metavar="Y.npy",
        help="N integer class labels: the metric is top-1 (without: output SNR against float)",
    )
    tu.add_argument(
        "--sensitivity-samples",
        type=_positive,
        help="validation samples the per-layer sensitivity is measured on (default: all)",
    )
    tu.add_argument(
        "--candidates",
        choices=["all", "weighted"],
        default="all",
        help="operators that may be kept high: every integer operator the score depends on "
        "(default; elementwise and attention arithmetic too) or conv / dense only",
    )
    tu.add_argument(
        "--ranking",
        choices=["auto", "measured", "local"],
        default="auto",
        help="sensitivity: measured (the score with only that operator quantized, one run "
        "each), local (its own quantization SNR on float inputs, one pass for all), auto "
        "(measured while candidates x samples stay within accelsim.dse.tune.MEASURED_RUNS, "
        "else local; default)",
    )
    tu.add_argument(
        "--prefer",
        choices=["fewest", "fastest"],
        default="fewest",
        help="of the configurations that meet the budget keep the one with the fewest "
        "operators kept high (default, Wu et al.) or the fastest on the first --target (float "
        "operators scattered between integer ones pay a conversion at every boundary)",
    )
    tu.add_argument(
        "--fidelity",
        choices=["codegen", "analytic"],
        default="analytic",
        help="cost fidelity (default analytic)",
    )
    tu.add_argument("--input-size", type=_positive, help="zoo models: spatial input size")
    tu.add_argument("--seed", type=_natural, default=0, help="data seed (default 0)")
    tu.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="writes MODEL_tune.json (every step) and MODEL_tune_mixed.yaml (for --mixed)",
    )
    tu.set_defaults(func=_cmd_tune)

    q = sub.add_parser("quantize", help="post-training quantization to a QDQ ONNX model")
    q.add_argument("model", help="zoo name or a float .onnx file")
    _add_quant_args(q, required=True)
    q.add_argument("--out", required=True, metavar="OUT.onnx", help="QDQ ONNX model to write")
    q.set_defaults(func=_cmd_quantize)
    return p


def _quiet_stdout() -> None:
    """After a closed pipe (`accelsim ... | head`): point stdout at /dev/null so that the
    interpreter's flush at exit does not fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _os_error_line(exc: OSError) -> str:
    from accelsim.core.fsutil import os_problem

    if exc.filename is None:
        return os_problem(exc)
    return f"{exc.filename}: {os_problem(exc)}"


def main(argv: Sequence[str] | None = None) -> int:
    """The error boundary: a user's mistake (an `AccelsimError`, or an OS error their paths or
    disks cause) is one line on stderr and exit 2; anything else is a bug and keeps its
    traceback."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, printed) or --help / --version
        return exc.code if isinstance(exc.code, int) else 2
    from accelsim.core.cache import new_run

    new_run()
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary
        return code
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accelsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a process the pipe killed
    except OSError as exc:
        from accelsim.core.fsutil import USER_ERRNOS

        if exc.errno not in USER_ERRNOS:
            return _bug()
        print(f"accelsim: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "accelsim: error: out of memory (expected a model and inputs that fit; "
            "ACCELSIM_MAX_TENSOR_BYTES bounds each tensor accelsim allocates)",
            file=sys.stderr,
        )
        return 2
    except Exception:
        return _bug()
    finally:
        warnings.showwarning = shown


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """accelsim's own warnings as one line (`accelsim: warning: ...`); others as Python shows
    them."""
    from accelsim.core.errors import AccelsimWarning

    if issubclass(category, AccelsimWarning):
        print(f"accelsim: warning: {message}", file=file or sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _bug() -> int:
    """The exception being handled is accelsim's fault: its traceback, and a request."""
    traceback.print_exc()
    print(
        f"accelsim: internal error (accelsim {__version__}): this is a bug; please report it "
        f"with the command line and the traceback above",
        file=sys.stderr,
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
