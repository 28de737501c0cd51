"""The names a user chooses among (data sets, class modes), in a module that imports nothing heavy: the
command line checks them before it loads torch."""

import re

from ..errors import UnderspecError, shown

DATASETS = ("mnist-5k", "mnist", "fashion-mnist")
CLASS_MODES = ("relabel", "subset")
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"


def check_device_name(device) -> str:
    """``device`` if it names a device the engine runs on (``auto``, ``cpu``, ``cuda``, ``cuda:N``), else the
    one-line error; whether that device exists is ``engine.resolve_device``'s to say."""
    if not isinstance(device, str) or not re.fullmatch(DEVICE_PATTERN, device):
        raise UnderspecError(f"unknown device {shown(device)}: use auto, cpu, cuda or cuda:N")
    return device
