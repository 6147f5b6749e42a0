"""A deployed CloudFormation stack's outputs and parameters (an operator's command finds its resources there)."""

from __future__ import annotations

from dataclasses import dataclass

from clickstream.adapters.aws import client


@dataclass(frozen=True)
class StackDescription:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def describe_stack(name: str) -> StackDescription:
    """The stack's outputs and parameter values (botocore's ClientError when there is no such stack)."""
    stack = client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    return StackDescription(
        name=name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        parameters={p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
    )
