"""Studies: what a chapter needs, as package code a script can call too.

- ``study``: a study declared as data (a data set and named runs, each a grid with its recording options),
  trained once and served from the run cache; ``tables``: derived tables cached beside the runs, keyed by the
  runs and by the version of the code that computes them;
- ``book``: the book's study (the paper grid, per-epoch records, balanced classes) and the tables several
  chapters read; ``first_look``: the experiments beyond the paper's network;
- ``claims``: the paper's claims, each judged by one rule; ``regimes``: a regime (this build, a sweep, a
  committed study of ``results/``) with its facts and verdicts; ``degenerate``: networks at the majority-class
  accuracy; ``shifts``: seeds under distribution shift, per regime; ``redundancy``: which units a network
  needs as it widens (``redundancy_evidence``: its intervals and verdicts; ``tickets``: unit-level tickets).
"""

from .book import BookStudy, book_grid, book_study
from .degenerate import DEGENERATE_MARGIN, degenerate, degenerate_text, majority_accuracy
from .first_look import FirstLook, first_look, first_look_study
from .redundancy import RedundancyStudy, redundancy_study
from .regimes import Regime, committed_regime, live_regime, regime_label, sweep_regime, verdict_table
from .seeds import SeedStudy, seeds_study
from .study import RunSpec, Study

__all__ = ["DEGENERATE_MARGIN", "BookStudy", "FirstLook", "Regime", "RunSpec", "Study", "book_grid", "book_study", "committed_regime",
           "degenerate", "degenerate_text", "first_look", "first_look_study", "live_regime", "majority_accuracy",
           "RedundancyStudy", "redundancy_study", "regime_label", "SeedStudy", "seeds_study", "sweep_regime", "verdict_table"]
