"""The metrics layer: pure functions of tensors (symmetry, matching, chance levels, tables, predictions,
representations). It imports the training layer only, never report or sweeps."""
