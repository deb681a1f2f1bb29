"""`make infra-plan` shows what `pulumi up` would create, with no network and no Pulumi CLI."""

import re
import subprocess
import sys

import yaml
from helpers import ROOT, env_setting


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
    group = env_setting("prod", "azure.resource_group")
    assert f"| infra-automation | Contributor | {group} |" in result.stdout
    for env in ("dev", "preprod", "prod"):
        assert f"### identities of {env}: trusted subjects and roles" in result.stdout
        assert re.search(rf"@\d+:environment:{env}-infra` \|", result.stdout)  # immutable form
    assert (
        "- [x] the monitor reads the workspace and the collected data, nothing more"
        in result.stdout
    )
    assert result.stdout.count("- [x] people hold nothing in prod beyond Reader") == 3
    assert "- [ ]" not in result.stdout  # a failed check would also exit non-zero
    for env in ("dev", "preprod", "prod"):
        assert f"### events and alerts of {env}" in result.stdout
    # the event webhook and prod's receiver are init's answers, whichever they are
    answers = yaml.safe_load((ROOT / "project.yml").read_text())
    hook = answers["event_webhook_url"]
    assert result.stdout.count(f"-> {hook}" if hook else "no event subscription") == 3
    email = answers["alert_email"]
    assert f"pages: {email}" in result.stdout
    endpoint = env_setting("prod", "endpoint.name")
    assert f"- rule {endpoint}-deployment-failed: " in result.stdout
    assert f"- {endpoint}/blue not deployed yet" in result.stdout
    assert "- no endpoint.alerts in environments/dev.yml: no metric rules" in result.stdout
