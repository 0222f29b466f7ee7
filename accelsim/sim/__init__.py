"""Cost simulation: per-layer cycles, latency and energy (`LayerCost`)."""
