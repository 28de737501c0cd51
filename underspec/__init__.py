"""underspec: the same network trained with different seeds, compared. See the book for the story."""

from .cache import load_or_train
from .data import Dataset, class_labels, load_dataset
from .errors import UnderspecError
from .grid import Grid
from .engine import train
from .model import PaperMLP, forward, init_params
from .reference import reference_train
from .run import Member, Run, load_run
from .chance import null_init, null_shuffle
from .compare import compare, summarize
from .matching import apc, match_units, pair_metrics, pe, seed_pairs, unit_correlation
from .predictions import (accuracy, align_units, barrier, disagreement, ensemble_accuracy,
                          expected_calibration_error, linear_path)
from .representations import aligned_view, linear_cka, pca_trajectories
from .symmetry import permute_hidden

__all__ = ["Dataset", "Grid", "Member", "PaperMLP", "Run", "UnderspecError", "class_labels", "forward",
           "init_params", "load_dataset", "load_or_train", "load_run", "reference_train", "train"]
__all__ += ["accuracy", "align_units", "aligned_view", "apc", "barrier", "compare", "disagreement",
            "ensemble_accuracy", "expected_calibration_error", "linear_cka", "linear_path", "match_units",
            "null_init", "null_shuffle", "pair_metrics", "pca_trajectories", "pe", "permute_hidden", "seed_pairs",
            "summarize", "unit_correlation"]
__version__ = "0.1.0"
