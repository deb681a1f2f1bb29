"""Fixtures every test folder shares."""

from pathlib import Path

import pytest
from helpers import copy_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")
