"""Step Functions executions: start one, and ask how it is doing (an operator's back-fill follows its run)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from clickstream.adapters.aws import client

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Execution:
    """What Step Functions says of an execution."""

    arn: str
    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class Executions(Protocol):
    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str: ...
    def describe(self, execution_arn: str) -> Execution: ...


class StepFunctionsExecutions:
    """:class:`Executions` through the Step Functions API."""

    def start(self, state_machine_arn: str, name: str, payload: Mapping[str, Any]) -> str:
        """Start an execution named ``name`` with ``payload`` as its input; returns its ARN."""
        answer = client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
        )
        return str(answer["executionArn"])

    def describe(self, execution_arn: str) -> Execution:
        desc = client("stepfunctions").describe_execution(executionArn=execution_arn)
        return Execution(
            arn=execution_arn,
            status=str(desc["status"]),
            output=json.loads(desc["output"]) if desc.get("output") else None,
            error=desc.get("error"),
            cause=desc.get("cause"),
        )
