"""Least privilege, checked against what the functions really do: a local run of the whole pipeline (ingest,
validation, hourly runs, a back-fill with re-validation) records every AWS call each function's handler makes, and
each call must be allowed by that function's IAM statements as CloudFormation receives them (the translated
template); the S3 statements name prefixes, never a whole bucket.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from tests.unit.infra.cfn import translated

ACCOUNT, REGION = "123456789012", "us-east-1"
# The local stack's names (clickstream_local.stack.local_settings) for the template's resources.
NAMES = {
    "LakeBucket": "clickstream-local-lake",
    "RawBucket": "clickstream-local-raw",
    "StateTable": "clickstream-local-state",
    "DeliveryStream": "clickstream-local-events",
}
ARNS = {
    "LakeBucket": f"arn:aws:s3:::{NAMES['LakeBucket']}",
    "RawBucket": f"arn:aws:s3:::{NAMES['RawBucket']}",
    "StateTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{NAMES['StateTable']}",
    "DeliveryStream": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{NAMES['DeliveryStream']}",
}
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}
FUNCTIONS = {
    "ingest": "IngestFunction",
    "validate": "ValidateFunction",
    "plan": "PlanFunction",
    "sessionize": "SessionizeFunction",
    "load": "LoadFunction",
    "aggregate": "AggregateFunction",
    "commit": "CommitFunction",
}


@dataclass(frozen=True)
class Need:
    """One IAM authorization a call needs: action, resource ARN, and the S3 prefix of a listing."""

    action: str
    resource: str
    prefix: str | None = None


def needs(service: str, operation: str, params: dict[str, Any]) -> list[Need]:
    """The authorizations an API call needs (an unknown call fails the test: map it here first)."""
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        key = f"{bucket}/{params.get('Key', '')}"
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [Need("s3:PutObject", key)]
        if operation == "GetObject":
            return [Need("s3:GetObject", key)]
        if operation == "HeadObject":
            return [Need("s3:GetObject", key)]
        if operation == "ListObjectsV2":
            return [Need("s3:ListBucket", bucket, params.get("Prefix", ""))]
        if operation == "DeleteObject":
            return [Need("s3:DeleteObject", key)]
    if service == "dynamodb":
        table = ARNS["StateTable"]
        resource = f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table
        return [Need(f"dynamodb:{operation}", resource)]
    if service == "firehose":
        return [Need(f"firehose:{operation}", ARNS["DeliveryStream"])]
    if service == "secretsmanager":
        return [Need(f"secretsmanager:{operation}", params["SecretId"])]
    raise AssertionError(f"map {service}.{operation} to the IAM actions it needs")


# -- statements as CloudFormation receives them ------------------------------------------------------------------
def _value(node: Any) -> Any:
    """Resolve the intrinsic functions IAM statements use, with the local stack's names."""
    if isinstance(node, list):
        return [_value(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "Ref" in node:
        return PSEUDO.get(node["Ref"]) or NAMES[node["Ref"]]
    if "Fn::GetAtt" in node:
        ref = node["Fn::GetAtt"]
        name, attr = ref.split(".", 1) if isinstance(ref, str) else ref
        assert attr == "Arn", ref
        return ARNS[name]
    if "Fn::Sub" in node:
        arg = node["Fn::Sub"]
        text, extra = (
            (arg, {}) if isinstance(arg, str) else (arg[0], {k: _value(v) for k, v in arg[1].items()})
        )

        def sub(match: re.Match) -> str:
            name = match.group(1)
            if name in extra:
                return extra[name]
            if name.endswith(".Arn"):
                return ARNS[name[:-4]]
            return PSEUDO.get(name) or NAMES[name]

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    if "Fn::Join" in node:
        return node["Fn::Join"][0].join(_value(node["Fn::Join"][1]))
    if "Fn::If" in node:  # the defaults: no warehouse secret, no VPC
        return None
    raise NotImplementedError(node)


def statements(cfn: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role_ref = cfn["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"]
    role = cfn["Resources"][role_ref[0] if isinstance(role_ref, list) else role_ref.split(".")[0]]
    out = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                continue  # conditional statements (the warehouse secret) are off with the defaults
            assert statement["Effect"] == "Allow"
            out.append(statement)
    return out


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(cfn_statements: list[dict[str, Any]], need: Need) -> bool:
    for statement in cfn_statements:
        actions = [a.lower() for a in _listify(statement["Action"])]
        if not any(fnmatchcase(need.action.lower(), a) for a in actions):
            continue
        resources = [_value(r) for r in _listify(statement["Resource"])]
        if not any(r is not None and fnmatchcase(need.resource, r) for r in resources):
            continue
        condition = statement.get("Condition")
        if condition:
            prefixes = condition.get("StringLike", {}).get("s3:prefix") or condition.get(
                "StringEquals", {}
            ).get("s3:prefix")
            if need.prefix is None or prefixes is None:
                continue
            if not any(fnmatchcase(need.prefix, p) for p in _listify(prefixes)):
                continue
        return True
    return False


# -- the recorded run ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, set[tuple[str, str, tuple]]]:
    """Every AWS call of each function's handler in a small demo with a re-validating back-fill."""
    import boto3

    from clickstream_local import bridge
    from clickstream_local.runner import DemoOptions, run_demo

    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
    calls: dict[str, set[tuple[str, str, tuple]]] = {name: set() for name in FUNCTIONS}
    real_load, real_client, real_submit = (
        bridge.load_handler,
        boto3.client,
        concurrent.futures.ThreadPoolExecutor.submit,
    )

    def load_handler(name: str, *args: Any, **kwargs: Any):
        handler = real_load(name, *args, **kwargs)

        @functools.wraps(handler)
        def as_function(event: dict, context: Any) -> Any:
            token = current.set(name)
            try:
                return handler(event, context)
            finally:
                current.reset(token)

        return as_function

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = current.get()
        if name is not None:
            kept = tuple(sorted((k, v) for k, v in params.items() if isinstance(v, str)))
            calls[name].add((model.service_model.service_name, model.name, kept))

    def client(*args: Any, **kwargs: Any):
        made = real_client(*args, **kwargs)
        made.meta.events.register("before-parameter-build", record)
        return made

    def submit(self, fn, /, *args, **kwargs):  # S3 transfers run in threads: they work for the same function
        return real_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        # (module scope: the suite's per-test fake AWS environment is not in place yet)
        for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            mp.setenv(var, value)
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setattr(bridge, "load_handler", load_handler)
        mp.setattr(boto3, "client", client)
        mp.setattr(concurrent.futures.ThreadPoolExecutor, "submit", submit)
        out: Path = tmp_path_factory.mktemp("least-privilege") / "demo"
        options = DemoOptions(
            events=300,
            days=0.5,
            step_hours=6,
            buckets=2,
            out=out,
            progress=False,
            backfill=True,
            revalidate=True,
        )
        assert run_demo(options).ok
        # The demo holds accepted records in a simulated Firehose buffer outside the ingest handler: one request
        # through the handler with its real Firehose sink shows what the function itself calls.
        _ingest_once(load_handler)
    return calls


def _ingest_once(load_handler: Any) -> None:
    import os

    from moto import mock_aws

    from clickstream.core.config import get_settings
    from clickstream.ingest.sink import set_sink
    from clickstream_local.bridge import FakeLambdaContext
    from clickstream_local.stack import create_resources, local_settings
    from tests.conftest import load_event

    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        settings = local_settings()
        create_resources(settings, with_cognito=False)
        for name, value in settings.as_dict().items():
            mp.setenv(name.upper(), str(value))
        get_settings.cache_clear()
        set_sink(None)
        try:
            answer = load_handler("ingest")(
                load_event("ingest_native.json"), FakeLambdaContext("ingest", "arn")
            )
        finally:
            get_settings.cache_clear()
        assert answer["statusCode"] == 202, answer
        assert os.environ["DELIVERY_STREAM"] == NAMES["DeliveryStream"]


def test_every_function_was_seen_at_work(recorded):
    assert all(recorded[name] for name in FUNCTIONS), {n: len(c) for n, c in recorded.items()}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_call_a_function_makes_is_allowed_by_its_role(recorded, name):
    # Given the function's IAM statements as deployed, and every call its handler made in the run
    cfn = translated()
    granted = statements(cfn, FUNCTIONS[name])
    refused = sorted(
        {
            need
            for service, operation, params in recorded[name]
            for need in needs(service, operation, dict(params))
            if not allowed(granted, need)
        },
        key=repr,
    )
    # Then none of them would be refused in AWS
    assert refused == []


@pytest.mark.parametrize("name", ["plan", "sessionize"])
def test_steps_that_look_for_objects_which_may_be_missing_may_list_the_lake(name):
    # Plan and Sessionize ask whether a retried task's earlier output exists (HeadObject): without s3:ListBucket
    # S3 answers a missing key with 403, which reads as a failure, instead of 404
    assert allowed(statements(translated(), FUNCTIONS[name]), Need("s3:ListBucket", ARNS["LakeBucket"]))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_s3_statements_name_prefixes_and_grant_no_bucket_administration(name):
    for statement in statements(translated(), FUNCTIONS[name]):
        actions = [a.lower() for a in _listify(statement["Action"])]
        if not any(a.startswith("s3:") for a in actions):
            continue
        assert not any(
            a in ("s3:*", "s3:put*") or "acl" in a or "lifecycle" in a or "policy" in a for a in actions
        )
        for resource in map(_value, _listify(statement["Resource"])):
            # an object statement names a prefix inside the bucket; only ListBucket names the bucket itself
            _bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
            if key:
                assert key.endswith("/*") and len(key) > 2, (name, resource)
            else:
                assert actions == ["s3:listbucket"], (name, resource)


@pytest.mark.parametrize(
    ("name", "action", "key"),
    [
        ("aggregate", "s3:PutObject", "validated/dt=2026-01-01/hr=00/x.parquet"),
        ("aggregate", "s3:GetObject", "validated/dt=2026-01-01/hr=00/x.parquet"),
        ("load", "s3:PutObject", "runs/r/manifest.json"),
        ("validate", "s3:PutObject", "reports/index.html"),
        ("validate", "s3:DeleteObject", "sessions/bucket=0000/slice=00/sessions.parquet"),
        ("sessionize", "s3:PutObject", "validated/dt=2026-01-01/hr=00/x.parquet"),
        ("sessionize", "s3:DeleteObject", "runs/r/bucket=0000/events.parquet"),
        ("commit", "s3:GetObject", "runs/r/manifest.json"),
    ],
)
def test_what_a_step_does_not_do_it_may_not_do(name, action, key):
    # (the statements are not blanket grants: the allow check really refuses)
    need = Need(action, f"{ARNS['LakeBucket']}/{key}")
    assert not allowed(statements(translated(), FUNCTIONS[name]), need)
