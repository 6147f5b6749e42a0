"""The stack's alarms watch metrics that exist: each names a resource of the template by its metric's dimensions, a
metric a metric filter of the template produces, or a custom metric the code emits (found in the code, not assumed).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from clickstream.core.observability import NAMESPACE, SERVICE
from clickstream_local.template import load_template
from tests.conftest import REPO_ROOT
from tests.unit.infra.cfn import FUNCTIONS

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
CODE_DIRS = ("functions", "src/clickstream")


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


@pytest.mark.parametrize("function", FUNCTIONS)
def test_any_functions_errors_alarm(template, alarms, function):
    alarm = _alarm_on(template, alarms, function, "Errors")
    assert alarm["Threshold"] == 0 and alarm["Statistic"] == "Sum"


def test_the_whole_alarm_list(template, alarms):
    # Given every alarm, by what it watches (resource or custom metric) and metric
    listed = sorted(
        (sorted(watched(template, a, n)), sorted(m["MetricName"] for m in _metric_stats(a)))
        for n, a in alarms.items()
    )
    # Then it is exactly the list the runbook explains (docs/runbook.md, "What each alarm means")
    assert listed == sorted(
        [
            (["RawObjectsDLQ"], ["ApproximateNumberOfMessagesVisible"]),
            (["ValidateFunction"], ["Errors"]),
            (["ValidateFunction"], ["Throttles"]),
            (["ValidateLogGroup"], ["ValidateTimeouts"]),
            *[
                ([f], ["Errors"])
                for f in (
                    "IngestFunction",
                    "PlanFunction",
                    "SessionizeFunction",
                    "LoadFunction",
                    "AggregateFunction",
                    "CommitFunction",
                )
            ],
            (["PipelineStateMachine"], ["ExecutionsFailed", "ExecutionsTimedOut"]),
            (["custom:RunsCommitted"], ["RunsCommitted"]),
            (["custom:EventsIn", "custom:EventsQuarantined"], ["EventsIn", "EventsQuarantined"]),
            (["IngestApi"], ["5XXError"]),
            (["IngestApi"], ["Latency"]),
            (["DeliveryStream"], ["DeliveryToS3.Success"]),
            (["DeliveryStream"], ["DeliveryToS3.DataFreshness"]),
        ]
    )
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    for alarm in alarms.values():
        name = alarm["AlarmName"]["Fn::Sub"].removeprefix("clickstream-${Stage}-")
        assert f"`{name}`" in runbook, f"docs/runbook.md does not explain the {name} alarm"


def test_freshness_means_no_committed_run_in_freshness_hours(alarms):
    alarm = alarms["PipelineFreshnessAlarm"]
    # the commit step's own count of runs that moved the watermark, summed per hour
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("RunsCommitted", "Sum", 3600)
    # every one of the last FreshnessHours hours without one, and hours without any datapoint count as such
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == {"Ref": "FreshnessHours"}
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"


def test_the_quarantine_rate_is_quarantined_over_events_in_above_the_threshold(alarms):
    alarm = alarms["QuarantineRateAlarm"]
    [expression] = [q for q in alarm["Metrics"] if "Expression" in q]
    assert expression["ReturnData"] is True
    text = expression["Expression"]["Fn::Sub"]
    assert (
        "100 * FILL(quarantined, 0) / events_in" in text
        and "events_in >= ${QuarantineAlarmMinEvents}" in text
    )
    assert alarm["Threshold"] == {"Ref": "QuarantineRateThresholdPercent"}
    ids = {q["Id"]: q["MetricStat"]["Metric"]["MetricName"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert ids == {"events_in": "EventsIn", "quarantined": "EventsQuarantined"}


def test_every_alarm_expression_uses_only_its_own_metrics(alarms):
    for name, alarm in alarms.items():
        for query in alarm.get("Metrics", []):
            if "Expression" in query:
                text = (
                    query["Expression"]
                    if isinstance(query["Expression"], str)
                    else query["Expression"]["Fn::Sub"]
                )
                ids = {q["Id"] for q in alarm["Metrics"] if "MetricStat" in q}
                words = set(re.findall(r"\b[a-z][a-z0-9_]*\b", text))
                assert words <= ids, (name, words - ids)


# -- the dashboard --------------------------------------------------------------------------------------------------
# Metrics the dashboard shows that the code does not emit yet, with what must emit them; the test fails when one
# appears in the code (then it leaves this list) so the list cannot go stale.
PENDING_METRICS: dict[str, str] = {}
PENDING_DIMENSIONS: dict[tuple[str, str], str] = {}


def _dashboard(template: dict) -> dict:
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body)


def _placeholder(value: str) -> str:
    match = re.fullmatch(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", value)
    assert match, value
    return match.group(1)


def test_every_dashboard_metric_exists(template):
    # Given every metric line of the dashboard
    widgets = _dashboard(template)["widgets"]
    resources = template["Resources"]
    emitted = emitted_metrics()
    seen_pending = set()
    for widget in widgets:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):  # a SEARCH expression over a custom metric's dimensions
                match = re.search(r"\{(\w+),([\w,]+)\} MetricName=\"(\w+)\"", line[0]["expression"])
                namespace, dims, metric = match.group(1), set(match.group(2).split(",")), match.group(3)
                assert namespace == NAMESPACE and metric in emitted
                for dim in dims - {"service"}:
                    if (metric, dim) in PENDING_DIMENSIONS:
                        seen_pending.add((metric, dim))
                    else:
                        assert _code_adds_dimension(dim), (metric, dim)
                continue
            namespace, metric, *rest = line
            dims = [d for d in rest if not isinstance(d, dict)]
            pairs = dict(zip(dims[::2], dims[1::2], strict=True))
            if namespace == NAMESPACE:
                # Then a custom metric is emitted by the code, with the service dimension …
                assert pairs == {"service": SERVICE}, metric
                if metric in PENDING_METRICS:
                    seen_pending.add(metric)
                else:
                    assert metric in emitted, metric
                continue
            # … and an AWS metric names a resource of the stack of the type its dimension means
            names, dimension_types = AWS_METRICS[namespace]
            assert metric in names, (namespace, metric)
            for dim, value in pairs.items():
                if (namespace, dim) == ("AWS/ApiGateway", "ApiName"):
                    assert value == resources["IngestApi"]["Properties"]["Name"]["Fn::Sub"]
                elif (namespace, dim) == ("AWS/ApiGateway", "Stage"):
                    assert value == "${Stage}"
                else:
                    assert resources[_placeholder(value)]["Type"] == dimension_types[dim], (metric, value)
    # And the metrics still to be emitted are on the page, not yet in the code
    assert seen_pending == set(PENDING_METRICS) | set(PENDING_DIMENSIONS)
    assert not set(PENDING_METRICS) & emitted
    assert not any(_code_adds_dimension(dim) for _, dim in PENDING_DIMENSIONS)


def _code_adds_dimension(name: str) -> bool:
    pattern = re.compile(rf"add_dimension\(\s*name=\"{name}\"")
    return any(
        pattern.search(path.read_text(encoding="utf-8"))
        for folder in CODE_DIRS
        for path in (REPO_ROOT / folder).rglob("*.py")
    )


def test_the_dashboard_shows_every_alarm(template, alarms):
    [panel] = [w for w in _dashboard(template)["widgets"] if w["type"] == "alarm"]
    assert {_placeholder(a) for a in panel["properties"]["alarms"]} == set(alarms)


def test_the_dashboard_covers_what_operators_watch(template):
    shown = {
        (line[0], line[1])
        for w in _dashboard(template)["widgets"]
        for line in w["properties"].get("metrics", [])
        if not isinstance(line[0], dict)
    }
    assert {
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "4XXError"),
        ("AWS/ApiGateway", "5XXError"),
        ("Clickstream", "AcceptedEvents"),
        ("Clickstream", "EventsValidated"),
        ("Clickstream", "EventsQuarantined"),
        ("AWS/States", "ExecutionsSucceeded"),
        ("AWS/States", "ExecutionTime"),
        ("Clickstream", "WarehouseLagSeconds"),
    } <= shown


# -- what the code really emits ---------------------------------------------------------------------------------
# The metric lines (EMF) the functions print when the samples of events/ go through them (clickstream invoke):
# an accepted and a refused request, and the sample hour's run up to its commit (validate, every step, commit).
EMF_SAMPLES = (
    ("IngestFunction", "ingest_native.json"),
    ("IngestFunction", "ingest_bad_envelope.json"),
    ("CommitFunction", "commit.json"),
)


@pytest.fixture(scope="module")
def emitted_emf() -> list[dict]:
    from clickstream_local.invoke import invoke
    from tests.conftest import load_event

    docs: list[dict] = []
    with pytest.MonkeyPatch.context() as mp:
        for var, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            mp.setenv(var, value)
        for function, sample in EMF_SAMPLES:
            result = invoke(function, load_event(sample))
            assert result.invocation.ok, result.invocation.error
            for invocation in (*result.seeded.invocations, result.invocation):
                docs.extend(invocation.metrics())
    return docs


def _emitted_series(docs: list[dict]) -> dict[tuple[str, str, frozenset[str]], list[dict]]:
    """(namespace, metric, dimension names) -> the EMF documents that carry it (with their dimension values)."""
    out: dict[tuple[str, str, frozenset[str]], list[dict]] = {}
    for doc in docs:
        for definition in doc["_aws"]["CloudWatchMetrics"]:
            for dims in definition["Dimensions"]:
                for metric in definition["Metrics"]:
                    key = (definition["Namespace"], metric["Name"], frozenset(dims))
                    out.setdefault(key, []).append({d: doc[d] for d in dims})
    return out


def _read_custom_series(template: dict, alarms: dict) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Every custom series an alarm or the dashboard reads: (namespace, metric, ((dimension, value), …)); a
    dashboard SEARCH names dimensions without values (value "*")."""
    read = set()
    for alarm in alarms.values():
        for metric in _metric_stats(alarm):
            if metric["Namespace"] == NAMESPACE:
                dims = tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))
                read.add((NAMESPACE, metric["MetricName"], dims))
    for widget in _dashboard(template)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[0], dict):
                match = re.search(r"\{(\w+),([\w,]+)\} MetricName=\"(\w+)\"", line[0]["expression"])
                names = match.group(2).split(",")
                if any((match.group(3), d) in PENDING_DIMENSIONS for d in names):
                    continue
                read.add((match.group(1), match.group(3), tuple(sorted((d, "*") for d in names))))
            elif line[0] == NAMESPACE:
                rest = [d for d in line[2:] if not isinstance(d, dict)]
                read.add((NAMESPACE, line[1], tuple(sorted(zip(rest[::2], rest[1::2], strict=True)))))
    return read


def test_every_custom_metric_read_is_emitted_with_its_namespace_and_dimensions(template, alarms, emitted_emf):
    # Given every custom series the alarms and the dashboard read, and the EMF lines the functions printed
    read = _read_custom_series(template, alarms)
    emitted = _emitted_series(emitted_emf)
    assert read and emitted
    for namespace, metric, dims in sorted(read):
        # Then the code emits that metric in that namespace with exactly those dimensions …
        key = (namespace, metric, frozenset(d for d, _ in dims))
        assert key in emitted, f"{metric}{dict(dims)} is read but never emitted as such: {sorted(emitted)}"
        # … and with the values read (a SEARCH takes any value)
        for name, value in dims:
            if value != "*":
                assert {doc[name] for doc in emitted[key]} == {value}, (metric, name)
