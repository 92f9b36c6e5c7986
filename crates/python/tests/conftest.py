"""Shared helpers: the repository's test data and what PyTorch loads."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"


def data(*parts):
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return path


@pytest.fixture
def data_dir():
    return DATA
