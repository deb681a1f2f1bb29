"""The policy pack: every rule in rules.py, mandatory.

pulumi preview --policy-pack infra/policy   (in infra/)
"""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from rules import RULES, STACK_RULES, stack_of


def as_policy(name: str, description: str, rule) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        for problem in rule(args.resource_type, args.props, stack_of(args.urn)):
            report_violation(problem)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


def as_stack_policy(name: str, description: str, rule) -> StackValidationPolicy:
    def validate(args, report_violation) -> None:
        resources = [(r.resource_type, dict(r.props)) for r in args.resources]
        stack = stack_of(args.resources[0].urn) if args.resources else ""
        for problem in rule(resources, stack):
            report_violation(problem)

    return StackValidationPolicy(name=name, description=description, validate=validate)


PolicyPack(
    name="mlops-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[as_policy(name, description, rule) for name, (description, rule) in RULES.items()]
    + [
        as_stack_policy(name, description, rule)
        for name, (description, rule) in STACK_RULES.items()
    ],
)
