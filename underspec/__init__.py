"""underspec: the same network trained with different seeds, compared. See the book for the story.

The package follows the data flow, one layer per folder: ``training`` (data, grid, model, engine, the paper's
loop, runs) <- ``metrics`` (symmetry, matching, chance levels, tables, predictions, representations) <-
``report`` (style, plots, pictures, claims, widgets); ``sweeps`` runs big grids in batch and only the CLI
imports it. This module is the face: the public names of the first two layers.
"""

from .errors import UnderspecError
from .metrics.chance import null_fixed_similarity, null_init, null_structured, null_untrained, random_pairing
from .metrics.matching import (align_units, apc, match_units, pair_metrics, paper_pair_metrics, pe, seed_pairs,
                               unit_correlation, weight_matching)
from .metrics.predictions import (accuracy, barrier, disagreement, ensemble_accuracy, expected_calibration_error,
                                  linear_path)
from .metrics.representations import aligned_view, linear_cka, pca_trajectories
from .metrics.symmetry import permute, permute_hidden
from .metrics.tables import compare, member_table, study_tables, summarize
from .training.cache import load_or_train
from .training.data import Dataset, class_labels, load_dataset
from .training.engine import train
from .training.grid import Grid
from .training.model import PaperMLP, forward, init_params
from .training.paper_loop import reference_train, train_paper_loop
from .training.run import Member, MixedRun, Run, load_run

__all__ = ["Dataset", "Grid", "Member", "MixedRun", "PaperMLP", "Run", "UnderspecError", "class_labels", "forward",
           "init_params", "load_dataset", "load_or_train", "load_run", "reference_train", "train",
           "train_paper_loop"]
__all__ += ["accuracy", "align_units", "aligned_view", "apc", "barrier", "compare", "disagreement",
            "ensemble_accuracy", "expected_calibration_error", "linear_cka", "linear_path", "match_units",
            "null_fixed_similarity", "null_init", "null_structured", "null_untrained", "pair_metrics", "paper_pair_metrics", "pca_trajectories", "pe", "permute",
            "permute_hidden", "random_pairing", "seed_pairs", "study_tables", "member_table", "summarize",
            "unit_correlation", "weight_matching"]
__version__ = "0.1.0"
