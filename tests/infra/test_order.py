"""The order ARM and Entra need, read back from the mocks' registrations of every stack
(infra/mlops_infra/ordering.py): an assignment waits for its scope and its role, credentials of
one identity are written one after the other, every assignment names its principal type."""

import dataclasses

import pytest
from mlops_infra import ordering
from mlops_infra.offline import run_stack_in_order

STACKS = ("shared", "dev", "preprod", "prod")


@pytest.fixture(scope="module")
def runs():
    return {stack: run_stack_in_order(stack) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_every_assignment_waits_for_its_scope_and_credentials_go_one_at_a_time(runs, stack):
    records, registrations = runs[stack]
    assert ordering.problems(records, registrations) == []


def test_name_only_credentials_wait_for_the_immutable_ones():
    records, registrations = run_stack_in_order(
        "shared", overrides={"mlops:githubNameOnlySubjects": "true"}
    )
    credentials = [r for r in records if r.type == ordering.CREDENTIAL]
    assert len(credentials) > len({r.inputs["resourceName"] for r in credentials})  # pairs exist
    assert ordering.problems(records, registrations) == []


def without_dependency(registrations, name, on):
    """The registrations with `name` no longer waiting for `on` (as a plain-string scope, or a
    missing depends_on, would leave it)."""
    urn = next(r.urn for r in registrations if r.logical_name == on)
    return [
        dataclasses.replace(r, dependencies=r.dependencies - {urn}) if r.logical_name == name else r
        for r in registrations
    ]


def test_the_check_catches_an_assignment_that_does_not_wait_for_its_scope(runs):
    records, registrations = runs["prod"]
    assignment = next(
        r.logical_name for r in records if r.logical_name.startswith("monitor-reader-workspace")
    )
    broken = without_dependency(registrations, assignment, "workspace")
    assert ordering.problems(records, broken) == [
        f"{assignment} does not wait for the resource of its scope, workspace"
    ]
    moved = [r for r in registrations if r.logical_name != assignment]
    moved.insert(0, next(r for r in registrations if r.logical_name == assignment))
    assert f"{assignment} is registered before the resource of its scope, workspace" in (
        ordering.problems(records, moved)
    )


def test_the_check_catches_two_credentials_of_one_identity_in_flight_together():
    records, registrations = run_stack_in_order(
        "shared", overrides={"mlops:githubNameOnlySubjects": "true"}
    )
    second, first = "prod-infra-federation-name-only", "prod-infra-federation-immutable"
    broken = without_dependency(registrations, second, first)
    (problem,) = ordering.problems(records, broken)
    assert problem.startswith(f"{first} and {second} write credentials of id-")


def test_the_check_catches_an_assignment_without_a_principal_type(runs):
    records, registrations = runs["dev"]
    first = next(r for r in records if r.type == ordering.ASSIGNMENT)
    inputs = {k: v for k, v in first.inputs.items() if k != "principalType"}
    changed = [dataclasses.replace(first, inputs=inputs) if r is first else r for r in records]
    assert ordering.problems(changed, registrations) == [
        f"{first.logical_name} sets no principalType"
    ]
