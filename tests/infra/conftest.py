"""Infra tests run the real Pulumi program under Pulumi's mocks (no cloud, no CLI)."""

import sys

import pytest
from helpers import ROOT

sys.path[:0] = [str(ROOT / "infra"), str(ROOT / "infra" / "policy")]

from mlops_infra.offline import run_stack  # noqa: E402

STACKS = ("shared", "dev", "preprod", "prod")


@pytest.fixture(scope="session")
def stacks():
    return {stack: run_stack(stack) for stack in STACKS}
