"""Design-space exploration: grids over precisions and accelerator parameters, Pareto fronts,
cached and resumable sweeps on a local process pool or a Dask cluster."""
