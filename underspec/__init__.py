"""underspec: the same network trained with different seeds, compared. See the book for the story.

The package follows the data flow, one layer per folder: ``training`` (data, grid, model, engine, the paper's
loop, runs) <- ``metrics`` (symmetry, matching, chance levels, tables, predictions, representations) <-
``studies`` (named studies, cached tables, regimes, the claim rules) <- ``report`` (style, plots, pictures,
widgets); ``sweeps`` runs big grids in batch. This module is the face: the public names of the first two
layers, each imported when first used (``underspec.train``), so that ``import underspec`` alone, and the
command line's argument checks, load neither torch nor scipy.
"""

from importlib import import_module

from .errors import UnderspecError

_FROM = {  # public name -> the module that defines it
    **dict.fromkeys(["null_fixed_similarity", "null_init", "null_structured", "null_untrained", "random_pairing"],
                    ".metrics.chance"),
    **dict.fromkeys(["align_units", "apc", "match_units", "pair_metrics", "paper_pair_metrics", "pe", "seed_pairs",
                     "unit_correlation", "weight_matching"], ".metrics.matching"),
    **dict.fromkeys(["accuracy", "barrier", "disagreement", "ensemble_accuracy", "expected_calibration_error",
                     "linear_path"], ".metrics.predictions"),
    **dict.fromkeys(["aligned_view", "linear_cka", "pca_trajectories"], ".metrics.representations"),
    **dict.fromkeys(["permute", "permute_hidden"], ".metrics.symmetry"),
    **dict.fromkeys(["compare", "member_table", "study_tables", "summarize"], ".metrics.tables"),
    "alpha_trimmed_ks": ".metrics.trimming",
    "empirical_ntk": ".metrics.kernels",
    "merge_parallel_units": ".metrics.redundancy",
    "powerlaw_alpha": ".metrics.spectra",
    "load_or_train": ".training.cache",
    **dict.fromkeys(["Dataset", "class_labels", "load_dataset"], ".training.data"),
    "train": ".training.engine",
    "Grid": ".training.grid",
    **dict.fromkeys(["PaperMLP", "forward", "init_params"], ".training.model"),
    **dict.fromkeys(["reference_train", "train_paper_loop"], ".training.paper_loop"),
    **dict.fromkeys(["Member", "MixedRun", "Run", "load_run"], ".training.run"),
}

__all__ = ["UnderspecError", *sorted(_FROM)]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _FROM:
        value = getattr(import_module(_FROM[name], __name__), name)
        globals()[name] = value  # imported once
        return value
    raise AttributeError(f"module 'underspec' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_FROM])
