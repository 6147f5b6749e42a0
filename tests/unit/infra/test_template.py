"""The stack (``template.yaml``) agrees with the code, the state machine and the local resources."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import re
import subprocess
import tomllib
from types import ModuleType

import pytest

from clickstream.core.config import Settings
from clickstream_local.template import asl_path, load_template
from tests.conftest import REPO_ROOT
from tests.unit.infra.cfn import FUNCTIONS, GetAtt, references

LIGHT = {"IngestFunction", "PlanFunction", "CommitFunction"}  # Domain + Runtime layers only
NOTIFY_STATE = "NotifyFailure"
RELEASE_STATE = "ReleaseLease"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


@pytest.fixture(scope="module")
def asl() -> dict:
    return json.loads(asl_path().read_text(encoding="utf-8"))


def _props(resources: dict, logical_id: str) -> dict:
    return resources[logical_id]["Properties"]


def _layers(resources: dict, logical_id: str) -> set[str]:
    return {ref["Ref"] for ref in _props(resources, logical_id)["Layers"]}


def _functions(resources: dict) -> dict[str, dict]:
    return {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}


# ---------------------------------------------------------------------------------------------- functions
def test_stack_declares_the_seven_pipeline_functions(resources):
    # Given the template / When its functions are listed / Then they are exactly the pipeline's stages
    assert set(_functions(resources)) == set(FUNCTIONS)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_function_code_dir_has_the_handler_it_names(resources, logical_id):
    # Given a function's CodeUri and Handler
    props = _props(resources, logical_id)
    module, _, attr = props["Handler"].rpartition(".")
    source = REPO_ROOT / props["CodeUri"] / f"{module}.py"
    # When its module is parsed (not imported: the layers decide what imports in Lambda)
    assert source.is_file(), f"{logical_id}: {source.relative_to(REPO_ROOT)} is missing"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    defined |= {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    # Then it defines the handler at module level
    assert attr in defined, f"{logical_id}: {source.name} defines no {attr}"


def test_ingest_function_has_no_data_layer(resources):
    # Given the ingest function (cold-start sensitive: no DuckDB, no psycopg)
    # When its layers are read / Then they are the domain and runtime layers only
    assert _layers(resources, "IngestFunction") == {"DomainLayer", "RuntimeLayer"}


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_has_exactly_the_layers_its_stage_needs(resources, logical_id):
    expected = {"DomainLayer", "RuntimeLayer"} | (set() if logical_id in LIGHT else {"DataLayer"})
    assert _layers(resources, logical_id) == expected


def test_layers_build_for_the_function_runtime(template, resources):
    # Given the functions' runtime and architecture
    runtime = template["Globals"]["Function"]["Runtime"]
    arch = template["Globals"]["Function"]["Architectures"]
    for name in ("DomainLayer", "RuntimeLayer", "DataLayer"):
        layer = resources[name]
        # Then every layer is built for that runtime and architecture
        assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
        assert layer["Properties"]["CompatibleArchitectures"] == arch
    for name in ("RuntimeLayer", "DataLayer"):
        # The dependency layers install their requirements with that runtime's Python
        layer = resources[name]
        assert layer["Metadata"]["BuildMethod"] == runtime
        assert (REPO_ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()
    # And the domain layer is the project's own build: src/Makefile copies the product package alone
    domain = resources["DomainLayer"]
    assert domain["Metadata"]["BuildMethod"] == "makefile"
    assert domain["Properties"]["ContentUri"].rstrip("/") == "src"
    makefile = (REPO_ROOT / "src" / "Makefile").read_text(encoding="utf-8")
    assert "build-DomainLayer:" in makefile and "cp -R clickstream " in makefile


# ---------------------------------------------------------------------------------------------- configuration
def _env_names(template: dict) -> set[str]:
    names = set(template["Globals"]["Function"]["Environment"]["Variables"])
    for res in _functions(template["Resources"]).values():
        names |= set(res["Properties"].get("Environment", {}).get("Variables", {}))
    return names


def test_environment_variable_names_are_settings_fields(template):
    # Given every environment variable the stack gives a function
    names = {n for n in _env_names(template) if not n.startswith("POWERTOOLS_")}
    # Then each is a Settings field upper-cased (a typo would silently fall back to the default)
    fields = {f.name.upper() for f in dataclasses.fields(Settings)}
    assert names <= fields, sorted(names - fields)


def test_stack_configures_every_deployment_setting(template):
    required = {
        "RAW_BUCKET",
        "LAKE_BUCKET",
        "STATE_TABLE",
        "DELIVERY_STREAM",
        "WAREHOUSE_SECRET_ARN",
        "SESSION_TIMEOUT_MINUTES",
        "MAX_SESSION_HOURS",
        "LOOKBACK_HOURS",
        "N_BUCKETS",
        "STORE_CURRENCY",
        "SITE_TIMEZONE",
        "INTERNAL_IP_RANGES",
        "ALLOWED_ORIGINS",
        "STAGE",
    }
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert required <= set(env), sorted(required - set(env))
    assert env["POWERTOOLS_SERVICE_NAME"] == "clickstream"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Clickstream"


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        ("SessionTimeoutMinutes", "session_timeout_minutes"),
        ("MaxSessionHours", "max_session_hours"),
        ("LookbackHours", "lookback_hours"),
        ("NBuckets", "n_buckets"),
        ("PipelineLeaseMinutes", "pipeline_lease_minutes"),
        ("StoreCurrency", "store_currency"),
        ("SiteTimezone", "site_timezone"),
        ("InternalIpRanges", "internal_ip_ranges"),
        ("SensitiveUrlParams", "sensitive_url_params"),
        ("AllowedOrigin", "allowed_origins"),
        ("WarehouseSecretArn", "warehouse_secret_arn"),
        ("Stage", "stage"),
    ],
)
def test_parameter_defaults_match_settings_defaults(template, parameter, field):
    # Given a template parameter and the Settings field its environment variable feeds
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env[field.upper()] == {"Ref": parameter}
    # Then a deploy with defaults behaves like a local run with defaults
    assert str(template["Parameters"][parameter]["Default"]) == str(
        Settings.__dataclass_fields__[field].default
    )


def test_environment_references_resolve(template):
    known = set(template["Parameters"]) | set(template["Resources"])
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict):
            assert value["Ref"] in known, name


# ---------------------------------------------------------------------------------------------- state table
def test_state_table_matches_local_resources(aws, resources):
    # Given the table the local stack created in moto from the template
    from clickstream.adapters.aws import client

    described = client("dynamodb").describe_table(TableName=aws.settings.state_table)["Table"]
    declared = _props(resources, "StateTable")
    # Then keys, attribute types and the arrivals index are the template's
    assert described["KeySchema"] == declared["KeySchema"]
    assert sorted(described["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        declared["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    indexes = {i["IndexName"]: i["KeySchema"] for i in described["GlobalSecondaryIndexes"]}
    assert indexes == {i["IndexName"]: i["KeySchema"] for i in declared["GlobalSecondaryIndexes"]}
    assert "arrivals" in indexes


def test_state_table_is_recoverable_and_encrypted(resources):
    props = _props(resources, "StateTable")
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert resources["StateTable"]["DeletionPolicy"] == "Retain"


# ---------------------------------------------------------------------------------------------- state machine
def test_asl_placeholders_and_substitutions_match(resources):
    # Given the ASL text and the state machine's DefinitionSubstitutions
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl_path().read_text(encoding="utf-8")))
    props = _props(resources, "PipelineStateMachine")
    # Then every placeholder is substituted and every substitution is used
    assert placeholders == set(props["DefinitionSubstitutions"])
    assert props["DefinitionUri"] == "statemachine/pipeline.asl.json"


def test_substitutions_point_at_the_right_functions(resources):
    subs = _props(resources, "PipelineStateMachine")["DefinitionSubstitutions"]
    for name in ("Plan", "Sessionize", "Load", "Aggregate", "Commit"):
        assert subs[f"{name}FunctionArn"] == GetAtt(f"{name}Function", "Arn")
    assert subs["FailureTopicArn"] == {"Ref": "PipelineFailureTopic"}


def test_state_machine_may_invoke_every_task_function_and_publish_failures(resources):
    policies = _props(resources, "PipelineStateMachine")["Policies"]
    invoked = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in policies if "LambdaInvokePolicy" in p}
    assert invoked == {
        "PlanFunction",
        "SessionizeFunction",
        "LoadFunction",
        "AggregateFunction",
        "CommitFunction",
    }
    published = [p["SNSPublishMessagePolicy"] for p in policies if "SNSPublishMessagePolicy" in p]
    assert published == [{"TopicName": GetAtt("PipelineFailureTopic", "TopicName")}]


def _follow_to_notify(states: dict, start: str) -> list[str]:
    """State names from ``start`` through Pass states and the lease release; stops at the first other state."""
    path = [start]
    while states[path[-1]]["Type"] == "Pass" or path[-1] == RELEASE_STATE:
        path.append(states[path[-1]]["Next"])
    return path


def test_every_task_and_map_catch_leads_to_the_failure_notice(asl):
    # Given every top-level Task and Map (a Map's Catch also covers the tasks inside it)
    states = asl["States"]
    steps = [
        n
        for n, s in states.items()
        if s["Type"] in ("Task", "Map") and n not in (NOTIFY_STATE, RELEASE_STATE)
    ]
    assert steps, "no steps found"
    for name in steps:
        catches = states[name].get("Catch", [])
        # Then each catches everything into a Pass state that names the step, then the SNS notice
        assert any("States.ALL" in c["ErrorEquals"] for c in catches), name
        for catch in catches:
            if catch["ErrorEquals"] == ["PipelineBusy"]:
                continue  # a scheduled run that finds the pipeline lease held ends Skipped (tested below)
            path = _follow_to_notify(states, catch["Next"])
            assert path[-1] == NOTIFY_STATE, (name, path)
            assert states[path[0]]["Result"] == name
            assert states[path[0]]["ResultPath"] == "$.failed_step"
            assert catch["ResultPath"] == "$.error"
    notify = states[NOTIFY_STATE]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == "${FailureTopicArn}"
    assert states[notify["Next"]]["Type"] == "Fail"


def test_the_pipeline_lease_is_skipped_on_busy_and_released_before_the_failure_notice(asl):
    # Given the ASL
    states = asl["States"]
    # Then only a busy scheduled run (PipelineBusy) ends Skipped, with success and no notice
    busy = [c for c in states["Plan"]["Catch"] if c["ErrorEquals"] == ["PipelineBusy"]]
    assert len(busy) == 1 and states["Plan"]["Catch"].index(busy[0]) == 0
    skipped = states[busy[0]["Next"]]
    assert skipped["Type"] in ("Pass", "Succeed") and skipped.get("End", skipped["Type"] == "Succeed")
    assert all(
        c["ErrorEquals"] != ["PipelineBusy"]
        for n, s in states.items()
        if n != "Plan"
        for c in s.get("Catch", [])
    )
    # And every failure path gives the lease back through the Commit function before it notifies, even when
    # the release itself fails
    release = states[RELEASE_STATE]
    assert release["Parameters"]["FunctionName"] == "${CommitFunctionArn}"
    assert release["Parameters"]["Payload"] == {"action": "release", "execution_id.$": "$$.Execution.Id"}
    assert release["Next"] == NOTIFY_STATE
    assert [c["Next"] for c in release["Catch"]] == [NOTIFY_STATE]
    assert release["Catch"][0]["ResultPath"] != "$.error"  # the notice keeps the failed step's error
    failed = [n for n, s in states.items() if s["Type"] == "Pass" and s.get("ResultPath") == "$.failed_step"]
    assert failed and all(states[n]["Next"] == RELEASE_STATE for n in failed)


def test_failure_notice_names_the_step_the_error_and_the_execution(asl):
    message = asl["States"][NOTIFY_STATE]["Parameters"]["Message.$"]
    for part in ("$.failed_step", "$.error.Error", "$.error.Cause", "$$.Execution.Id"):
        assert part in message


def test_lambda_tasks_retry_transient_errors_with_backoff(asl):
    def tasks(states: dict):
        for name, state in states.items():
            if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke":
                yield name, state
            if state["Type"] == "Map":
                yield from tasks(state["ItemProcessor"]["States"])

    found = list(tasks(asl["States"]))
    # five functions; Sessionize runs in both the inline and the back-fill (Distributed) Map
    assert len({state["Parameters"]["FunctionName"] for _, state in found}) == 5
    for name, state in found:
        retry = state["Retry"][0]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"], name
        assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2, name


def test_sessionize_retries_the_error_a_lost_pointer_race_raises(asl):
    # Given the error the Sessionize step raises when another writer replaced the bucket pointer it read (Lambda's
    # Python runtime reports an unhandled exception's class name, which Step Functions matches in ErrorEquals)
    from clickstream.sessionize.state import BucketState, PointerMoved, swap_pointer
    from tests.fakes.storage import MemoryObjectStore

    lake = MemoryObjectStore()
    swap_pointer(lake, 0, BucketState(generation="run-1"), None, "run-1")
    with pytest.raises(PointerMoved) as lost:  # run-2 read no pointer, but run-1 has published one since
        swap_pointer(lake, 0, BucketState(generation="run-2"), None, "run-2")
    error = type(lost.value).__name__
    # Then the Sessionize task of both Maps retries exactly that name, briefly, with backoff and full jitter, and
    # keeps retrying transient Lambda errors as before
    for map_state in ("Sessionize", "SessionizeBackfill"):
        task = asl["States"][map_state]["ItemProcessor"]["States"]["SessionizeBucket"]
        [retrier] = [r for r in task["Retry"] if error in r["ErrorEquals"]]
        assert retrier["ErrorEquals"] == [error], map_state
        assert retrier["JitterStrategy"] == "FULL", map_state
        assert 0 < retrier["IntervalSeconds"] <= 2 and retrier["BackoffRate"] > 1, map_state
        assert 2 <= retrier["MaxAttempts"] <= 5, map_state
        assert "Lambda.TooManyRequestsException" in task["Retry"][0]["ErrorEquals"], map_state
    # And no other task retries it (only a Sessionize iteration re-reads the pointer it swaps)
    others = [
        name
        for name, state in asl["States"].items()
        for r in state.get("Retry", [])
        if error in r["ErrorEquals"]
    ]
    assert others == []


def test_function_timeouts_fit_their_task_timeouts(template, resources, asl):
    # Given each task's TimeoutSeconds in the ASL and its function's Timeout
    default = template["Globals"]["Function"]["Timeout"]
    states = dict(asl["States"])
    states.update(asl["States"]["Sessionize"]["ItemProcessor"]["States"])
    by_placeholder = {
        s["Parameters"]["FunctionName"][2:-1]: s["TimeoutSeconds"]
        for s in states.values()
        if s["Type"] == "Task" and "FunctionName" in s.get("Parameters", {})
    }
    for placeholder, task_timeout in by_placeholder.items():
        function = placeholder.removesuffix("Arn")
        # Then Lambda gives up before Step Functions does (its error is then caught and retried)
        assert _props(resources, function).get("Timeout", default) <= task_timeout, function


def test_pipeline_runs_on_a_schedule_with_logs_and_tracing(resources):
    props = _props(resources, "PipelineStateMachine")
    event = next(iter(props["Events"].values()))
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "PipelineSchedule"}
    assert resources["PipelineLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    assert props["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"] == GetAtt(
        "PipelineLogGroup", "Arn"
    )
    assert props["Tracing"]["Enabled"] is True


def test_failure_email_subscription_is_optional(template, resources):
    sub = resources["PipelineFailureEmail"]
    assert sub["Condition"] == "HasAlarmEmail"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    # encrypted with the stack's own key, which CloudWatch alarms may use (not with alias/aws/sns, which they may not)
    assert _props(resources, "PipelineFailureTopic")["KmsMasterKeyId"] == {"Ref": "OperationsKey"}
    key_policy = _props(resources, "OperationsKey")["KeyPolicy"]["Statement"]
    alarms = next(s for s in key_policy if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"})
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    topic_policy = _props(resources, "PipelineFailureTopicPolicy")["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        for s in topic_policy
    )
    # and the state machine, which publishes the failure notice, may use the key
    policies = _props(resources, "PipelineStateMachine")["Policies"]
    kms = [
        s
        for p in policies
        if "Statement" in p
        for s in p["Statement"]
        if "kms:GenerateDataKey*" in s["Action"]
    ]
    assert [s["Resource"] for s in kms] == [GetAtt("OperationsKey", "Arn")]


# ---------------------------------------------------------------------------------------------- ingest API
@pytest.mark.parametrize(
    ("response_type", "status"),
    [
        ("UNAUTHORIZED", 401),
        ("ACCESS_DENIED", 403),
        ("REQUEST_TOO_LARGE", 413),
        ("THROTTLED", 429),
        ("BAD_REQUEST_BODY", 400),
        ("UNSUPPORTED_MEDIA_TYPE", 415),
        ("QUOTA_EXCEEDED", 429),
    ],
)
def test_gateway_responses_are_json_errors_with_cors(resources, response_type, status):
    # Given API Gateway's own answer of this type
    response = _props(resources, "IngestApi")["GatewayResponses"][response_type]
    # Then it keeps its status, carries CORS headers, and its body is {"error": {"code", "message"}}
    assert response["StatusCode"] == status
    headers = response["ResponseParameters"]["Headers"]
    # (what the CORS headers resolve to per AllowedOrigin: tests/unit/ingest/test_stack.py)
    assert headers["Access-Control-Allow-Origin"] == {
        "Fn::If": ["AllowsEveryOrigin", "'*'", "method.request.header.Origin"]
    }
    assert headers["Access-Control-Allow-Credentials"] == {
        "Fn::If": ["AllowsEveryOrigin", {"Ref": "AWS::NoValue"}, "'true'"]
    }
    body = response["ResponseTemplates"]["application/json"]
    rendered = json.loads(body.replace("$context.error.messageString", json.dumps("Unauthorized")))
    assert set(rendered["error"]) == {"code", "message"}
    assert rendered["error"]["code"]


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
def test_default_gateway_responses_are_json_errors_with_cors(resources, response_type):
    response = _props(resources, "IngestApi")["GatewayResponses"][response_type]
    assert "StatusCode" not in response  # keep API Gateway's own status
    assert "Access-Control-Allow-Origin" in response["ResponseParameters"]["Headers"]
    body = response["ResponseTemplates"]["application/json"]
    assert set(json.loads(body.replace("$context.error.messageString", '"x"'))["error"]) == {
        "code",
        "message",
    }


def test_cors_preflight_allows_the_tracker_headers_without_a_token(resources):
    props = _props(resources, "IngestApi")
    allowed = props["Cors"]["AllowHeaders"].strip("'").split(",")
    assert {"Authorization", "Content-Type", "Content-Encoding"} <= set(allowed)
    assert props["Cors"]["AllowOrigin"] == {"Fn::Sub": "'${AllowedOrigin}'"}
    assert props["Auth"]["AddDefaultAuthorizerToCorsPreflight"] is False
    assert props["Auth"]["DefaultAuthorizer"] == "CognitoAuthorizer"
    assert props["Auth"]["Authorizers"]["CognitoAuthorizer"]["UserPoolArn"] == GetAtt("UserPool", "Arn")


def test_binary_media_types_are_specific_gzip_types(resources):
    types = _props(resources, "IngestApi")["BinaryMediaTypes"]
    assert "application~1gzip" in types
    assert not any("*" in t for t in types)


def test_ingest_route_and_throttling(resources):
    event = _props(resources, "IngestFunction")["Events"]["PostEvents"]
    assert event["Properties"] == {"RestApiId": {"Ref": "IngestApi"}, "Path": "/v1/events", "Method": "post"}
    settings = _props(resources, "IngestApi")["MethodSettings"]
    route = next(s for s in settings if s["ResourcePath"] == "/~1v1~1events")
    assert route["HttpMethod"] == "POST"
    assert "ThrottlingRateLimit" in route and "ThrottlingBurstLimit" in route
    assert _props(resources, "IngestApi")["AccessLogSetting"]["DestinationArn"] == GetAtt(
        "ApiAccessLogGroup", "Arn"
    )


def test_ingest_may_only_write_to_its_delivery_stream(resources):
    assert _props(resources, "IngestFunction")["Policies"] == [
        {"FirehoseWritePolicy": {"DeliveryStreamName": {"Ref": "DeliveryStream"}}}
    ]


def test_user_pool_client_is_public_with_srp_and_refresh(resources):
    props = _props(resources, "UserPoolClient")
    assert props["GenerateSecret"] is False
    assert set(props["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}


# ---------------------------------------------------------------------------------------------- raw zone
def test_raw_notifications_cover_firehose_output_but_not_its_errors(resources):
    # Given Firehose's prefixes and the raw bucket's notification filter
    firehose = _props(resources, "DeliveryStream")["ExtendedS3DestinationConfiguration"]
    notification = _props(resources, "RawBucket")["NotificationConfiguration"]["QueueConfigurations"][0]
    prefix = notification["Filter"]["S3Key"]["Rules"][0]["Value"]
    # Then every delivered object is announced to the queue, and no error object ever is
    assert firehose["Prefix"].startswith(prefix)
    assert not firehose["ErrorOutputPrefix"].startswith(prefix)
    assert firehose["Prefix"] == "raw/dt=!{timestamp:yyyy-MM-dd}/hr=!{timestamp:HH}/"
    assert firehose["CompressionFormat"] == "GZIP"
    assert notification["Queue"] == GetAtt("RawObjectsQueue", "Arn")
    assert notification["Event"] == "s3:ObjectCreated:*"


def test_queue_policy_names_the_raw_bucket_without_referencing_it(resources):
    # Given the queue policy S3 needs before the bucket's notification can be created
    policy = resources["RawObjectsQueuePolicy"]
    # Then it does not depend on the bucket (that would be a dependency cycle) …
    assert "RawBucket" not in references(policy)
    assert "RawBucket" in references(resources["RawBucketPolicy"])  # (the check does see references)
    assert resources["RawBucket"]["DependsOn"] == "RawObjectsQueuePolicy"
    # … yet names exactly the bucket's ARN and account
    allow = policy["Properties"]["PolicyDocument"]["Statement"][0]
    bucket_name = _props(resources, "RawBucket")["BucketName"]["Fn::Sub"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert (
        allow["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
        == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"
    )
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_raw_queue_redrives_to_a_dead_letter_queue_after_validate_timeouts(resources):
    queue = _props(resources, "RawObjectsQueue")
    validate = _props(resources, "ValidateFunction")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == GetAtt("RawObjectsDLQ", "Arn")
    assert queue["VisibilityTimeout"] >= 6 * validate["Timeout"]
    # The Plan step waits out a validation still running (docs/decisions.md, "Arrival is the validation time")
    assert Settings().arrival_settle_seconds > validate["Timeout"]


def test_validate_reports_partial_batch_failures(resources):
    event = _props(resources, "ValidateFunction")["Events"]["RawObjects"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["Queue"] == GetAtt("RawObjectsQueue", "Arn")
    assert event["Properties"]["BatchSize"] >= 1
    assert "MaximumBatchingWindowInSeconds" in event["Properties"]


@pytest.mark.parametrize("bucket", ["RawBucket", "LakeBucket"])
def test_buckets_are_private_and_encrypted(resources, bucket):
    props = _props(resources, bucket)
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["LifecycleConfiguration"]["Rules"]


@pytest.mark.parametrize("function", ["LoadFunction", "AggregateFunction"])
def test_warehouse_functions_read_the_secret_and_join_the_vpc_only_when_configured(resources, function):
    # (what these resolve to per parameters: tests/unit/infra/test_warehouse_network.py)
    props = _props(resources, function)
    role = resources[props["Role"]["Fn::GetAtt"].split(".")[0]]
    assert role["Type"] == "AWS::IAM::Role" and "Policies" not in props
    statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    conditional = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert [c[0] for c in conditional] == ["HasWarehouseSecret", "CreatesWarehouse"]
    assert props["VpcConfig"]["Fn::If"][0] == "WarehouseClientsInVpc"


def test_outputs(template):
    assert {
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "RawBucketName",
        "LakeBucketName",
        "StateMachineArn",
        "FailureTopicArn",
        "StateTableName",
    } <= set(template["Outputs"])


# ---------------------------------------------------------------------------------------------- layers
def _requirements(layer: str) -> dict[str, str]:
    out = {}
    for line in (REPO_ROOT / "layers" / layer / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower()
            out[name] = line
    return out


def _pyproject_dependencies() -> dict[str, str]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower(): d for d in data["project"]["dependencies"]}


def test_layer_requirements_match_the_package_ranges():
    # Given the package's pinned ranges
    declared = _pyproject_dependencies()
    runtime, data = _requirements("runtime"), _requirements("data")
    # Then the layers install exactly those ranges (a layer drifting from the tests' versions is a bug)
    assert set(runtime) == {"aws-lambda-powertools", "pydantic", "fastjsonschema"}
    assert set(data) == {"duckdb", "psycopg", "ua-parser", "crawlerdetect", "google-re2", "rbloom"}
    for name, line in {**runtime, **data}.items():
        assert line == declared[name], name
    assert "tracer" in runtime["aws-lambda-powertools"]


def test_no_layer_ships_boto3_pyarrow_or_pandas():
    for layer in ("runtime", "data"):
        assert not {"boto3", "botocore", "pyarrow", "pandas"} & set(_requirements(layer)), layer


# ---------------------------------------------------------------------------------------------- translation
def _translate_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "translate_template", REPO_ROOT / "scripts" / "translate_template.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_template_translates_to_plain_cloudformation(tmp_path):
    # Given samtranslator: in this environment (in-process), else the SAM tools environment `make tools` creates
    out = tmp_path / "translated.json"
    args = [str(REPO_ROOT / "template.yaml"), str(out)]
    try:
        import samtranslator  # noqa: F401
    except ImportError:
        tools = REPO_ROOT / ".tools" / "sam" / "bin" / "python"
        if not tools.exists():
            pytest.skip(
                "aws-sam-translator is not installed in this environment and `make tools` has not been run"
            )
        script = str(REPO_ROOT / "scripts" / "translate_template.py")
        subprocess.run([str(tools), script, *args], check=True, capture_output=True, text=True, timeout=120)
    else:
        # When the template is translated offline
        assert _translate_script().main(args) == 0
    cfn = json.loads(out.read_text(encoding="utf-8"))
    # Then no serverless resource is left, every function became a Lambda function, and the ASL is inlined
    types = {r["Type"] for r in cfn["Resources"].values()}
    assert not any(t.startswith("AWS::Serverless::") for t in types)
    lambdas = {k for k, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert lambdas == set(FUNCTIONS) | {"PrefixListLookupFunction"}  # (a custom resource's, at deploy)
    machine = cfn["Resources"]["PipelineStateMachine"]["Properties"]
    assert "DefinitionString" in machine and set(machine["DefinitionSubstitutions"]) == {
        "PlanFunctionArn",
        "SessionizeFunctionArn",
        "LoadFunctionArn",
        "AggregateFunctionArn",
        "CommitFunctionArn",
        "FailureTopicArn",
    }
    stage = next(r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == {"Ref": "Stage"}


def test_translate_script_localizes_artifacts_and_inlines_the_asl():
    # Given the script's artifact step (pure Python: no samtranslator needed)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "translate_template", REPO_ROOT / "scripts" / "translate_template.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # When it rewrites the template's local paths
    out = module.localize_artifacts(load_template(), REPO_ROOT)
    # Then functions and layers point at placeholder S3 objects and the ASL is inlined as Definition
    assert (
        out["Resources"]["IngestFunction"]["Properties"]["CodeUri"]
        == "s3://local-artifacts/functions/ingest.zip"
    )
    assert out["Resources"]["DataLayer"]["Properties"]["ContentUri"] == "s3://local-artifacts/layers/data.zip"
    machine = out["Resources"]["PipelineStateMachine"]["Properties"]
    assert "DefinitionUri" not in machine
    assert machine["Definition"]["StartAt"] == "Plan"
    # And a missing local path is reported with the resource's name
    broken = load_template() | {
        "Resources": {"X": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "nope/"}}}
    }
    with pytest.raises(FileNotFoundError, match="X: nope/"):
        module.localize_artifacts(broken, REPO_ROOT)
