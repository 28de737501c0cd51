"""The training layer: data, the grid of knobs, the model, the engine, the paper's loop, runs and their cache.

It imports nothing above it (no metrics, report or sweeps)."""
