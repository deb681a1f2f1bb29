"""The Pulumi program: the stack's name says which part of the estate it builds."""

import pulumi
from mlops_infra.program import build

build(pulumi.get_stack())
