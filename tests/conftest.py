import pytest

import underspec


@pytest.fixture(scope="session")
def mnist5k():
    return underspec.load_dataset("mnist-5k")


@pytest.fixture(scope="session")
def small(mnist5k):
    """300 training and 100 test digits: enough for exactness checks, fast."""
    return mnist5k.take(300, 100)
