"""underspec: the same network trained with different seeds, compared. See the book for the story."""

from .cache import load_or_train
from .data import Dataset, class_labels, load_dataset
from .errors import UnderspecError
from .grid import Grid
from .engine import train
from .model import PaperMLP, forward, init_params
from .reference import reference_train
from .run import Member, Run, load_run

__all__ = ["Dataset", "Grid", "Member", "PaperMLP", "Run", "UnderspecError", "class_labels", "forward",
           "init_params", "load_dataset", "load_or_train", "load_run", "reference_train", "train"]
__version__ = "0.1.0"
