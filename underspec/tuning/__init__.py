"""Tuning: hyperparameter searches over the grid's knobs with Optuna, each batch of trials trained as one
grid by the engine.

- ``space``: the search space (a range or a list of values per knob) and how a trial's values become a grid;
- ``config``: a tuning config (``underspec tune CONFIG.yaml``): the space, the knobs every trial shares, the
  sampler, the budget, the seeds per trial, the journal file; checked before anything is imported or trained;
- ``tuner``: the ask-and-tell loop on Optuna's journal storage (several workers share one study; a killed
  worker's trials are taken over), the pruner fed by the validation split, the table of trials.

Importing this package (or ``space`` and ``config``) loads neither torch nor Optuna: the command line checks a
config before any heavy import.
"""
