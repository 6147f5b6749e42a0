"""The stack's alarms watch metrics that exist: each names a resource of the template by its metric's dimensions, a
metric a metric filter of the template produces, or a custom metric the code emits (found in the code, not assumed).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from clickstream.core.observability import NAMESPACE, SERVICE
from clickstream.local.template import REPO_ROOT, load_template

# AWS metrics this stack may alarm on: namespace -> (metric names, dimension -> resource type it names).
AWS_METRICS: dict[str, tuple[set[str], dict[str, str]]] = {
    "AWS/Lambda": (
        {"Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions"},
        {"FunctionName": "AWS::Serverless::Function"},
    ),
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
        {"QueueName": "AWS::SQS::Queue"},
    ),
    "AWS/States": (
        {
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
            "ExecutionsSucceeded",
            "ExecutionTime",
        },
        {"StateMachineArn": "AWS::Serverless::StateMachine"},
    ),
    "AWS/ApiGateway": (
        {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
        {"ApiName": "AWS::Serverless::Api", "Stage": "AWS::Serverless::Api"},
    ),
    "AWS/Firehose": (
        {"DeliveryToS3.Success", "DeliveryToS3.DataFreshness", "ThrottledRecords"},
        {"DeliveryStreamName": "AWS::KinesisFirehose::DeliveryStream"},
    ),
}
CODE_DIRS = ("functions", "layers/domain/clickstream")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def alarms(template) -> dict[str, dict]:
    return {
        name: res["Properties"]
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::CloudWatch::Alarm"
    }


def emitted_metrics() -> set[str]:
    """Metric names the code emits through Powertools (``add_metric``/``single_metric`` with ``name="…"``)."""
    pattern = re.compile(r"(?:add_metric|single_metric)\(\s*name=\"(\w+)\"")
    names: set[str] = set()
    for folder in CODE_DIRS:
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def _metric_stats(alarm: dict) -> list[dict]:
    """The metrics an alarm reads: its own, or each MetricStat of its metric math."""
    if "Metrics" not in alarm:
        return [{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]


def _target(value: Any) -> str:
    """The logical id a dimension value refers to (``!Ref X``, ``!GetAtt X.Attr``)."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        ref = value["Fn::GetAtt"]
        return ref.split(".", 1)[0] if isinstance(ref, str) else ref[0]
    raise AssertionError(f"dimension value {value!r} names no resource")


def _check_aws_metric(template: dict, metric: dict, where: str) -> str:
    names, dimensions = AWS_METRICS[metric["Namespace"]]
    assert metric["MetricName"] in names, where
    given = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
    assert given and set(given) <= set(dimensions), where
    resources = template["Resources"]
    if metric["Namespace"] == "AWS/ApiGateway":
        api = resources["IngestApi"]["Properties"]
        assert given == {"ApiName": api["Name"], "Stage": {"Ref": "Stage"}}, where
        assert api["StageName"] == {"Ref": "Stage"}
        return "IngestApi"
    ((name, value),) = given.items()
    target = _target(value)
    assert resources[target]["Type"] == dimensions[name], where
    if name == "QueueName":
        assert value == {"Fn::GetAtt": f"{target}.QueueName"} or value == {
            "Fn::GetAtt": [target, "QueueName"]
        }
    return target


def _check_log_metric(template: dict, metric: dict, where: str) -> str:
    filters = [
        (res["Properties"]["LogGroupName"], t)
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Logs::MetricFilter"
        for t in res["Properties"]["MetricTransformations"]
    ]
    matching = [
        lg
        for lg, t in filters
        if (t["MetricNamespace"], t["MetricName"]) == (metric["Namespace"], metric["MetricName"])
    ]
    assert len(matching) == 1, f"{where}: no metric filter produces {metric['MetricName']}"
    return _target(matching[0])


def _check_custom_metric(metric: dict, where: str) -> str:
    assert metric["MetricName"] in emitted_metrics(), f"{where}: the code never emits {metric['MetricName']}"
    # Powertools' Metrics(namespace=NAMESPACE, service=SERVICE) adds the one default dimension service=SERVICE
    assert metric["Dimensions"] == [{"Name": "service", "Value": SERVICE}], where
    return f"custom:{metric['MetricName']}"


def watched(template: dict, alarm: dict, where: str) -> set[str]:
    """What an alarm's metrics are about: logical ids of resources, or ``custom:<metric>``; checks each exists."""
    found = set()
    for metric in _metric_stats(alarm):
        namespace = metric["Namespace"]
        if isinstance(namespace, str) and namespace in AWS_METRICS:
            found.add(_check_aws_metric(template, metric, where))
        elif namespace == NAMESPACE:
            found.add(_check_custom_metric(metric, where))
        elif namespace == {"Fn::Sub": "Clickstream/${Stage}"}:
            found.add(_check_log_metric(template, metric, where))
        else:
            raise AssertionError(f"{where}: unknown namespace {namespace!r}")
    return found


def test_every_alarms_metric_exists_for_a_resource_of_the_stack(template, alarms):
    # Given every alarm of the stack
    assert alarms
    for name, alarm in alarms.items():
        # Then its metrics refer to the stack's own resources or to what the code emits, and it notifies the topic
        assert watched(template, alarm, name)
        assert alarm["AlarmActions"] == [{"Ref": "PipelineFailureTopic"}], name
        assert alarm["AlarmName"]["Fn::Sub"].startswith("clickstream-${Stage}-"), name
        assert alarm.get("TreatMissingData") in {"notBreaching", "breaching"}, name


def _alarm_on(template: dict, alarms: dict, target: str, metric: str) -> dict:
    found = [
        a
        for name, a in alarms.items()
        if target in watched(template, a, name) and metric in {m["MetricName"] for m in _metric_stats(a)}
    ]
    assert len(found) == 1, f"expected one alarm on {target} {metric}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize(
    ("target", "metric"),
    [
        ("RawObjectsDLQ", "ApproximateNumberOfMessagesVisible"),
        ("ValidateFunction", "Errors"),
        ("ValidateFunction", "Throttles"),
        ("ValidateLogGroup", "ValidateTimeouts"),
    ],
)
def test_a_bad_raw_object_is_visible(template, alarms, target, metric):
    # Given an object that fails validation (an exception, a throttle, a timeout) and then the dead-letter queue
    alarm = _alarm_on(template, alarms, target, metric)
    # Then the first occurrence already alarms
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"


def test_the_timeout_filter_reads_the_validate_functions_own_log_group(template):
    # Given the metric filter that counts the runtime's timeout lines
    [metric_filter] = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Logs::MetricFilter"
    ]
    validate = template["Resources"]["ValidateFunction"]["Properties"]
    # Then it reads the log group the function writes to, for the line Lambda writes on a timeout
    assert (
        validate["LoggingConfig"]["LogGroup"] == metric_filter["LogGroupName"] == {"Ref": "ValidateLogGroup"}
    )
    assert metric_filter["FilterPattern"] == '"Task timed out after"'
