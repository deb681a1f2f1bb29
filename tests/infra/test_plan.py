"""`make infra-plan` shows what `pulumi up` would create, with no network and no Pulumi CLI."""

import subprocess
import sys

from helpers import ROOT


def test_the_offline_plan_lists_every_stack_and_the_matrix():
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "plan.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "## Access matrix" in result.stdout
    for stack in ("shared", "dev", "preprod", "prod"):
        assert f"## stack {stack}" in result.stdout
    assert "| infra-automation | Contributor | rg-mlops-prod |" in result.stdout
