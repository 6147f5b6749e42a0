"""The stack's hardening, read from the template and evaluated per parameters: logs kept and encrypted, buckets
private with access logs and TLS only, shoppers' pool protected, the API's optional WAF, concurrency reserved, and
every checkov skip justified where it applies.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from clickstream_local.template import load_template
from tests.unit.infra.cfn import FUNCTIONS, created, parameters, resolve, translated


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


# -- logs -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_a_log_group_of_the_stack_kept_log_retention_days(template, function):
    props = template["Resources"][function]["Properties"]
    group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    group = template["Resources"][group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    name = props["FunctionName"]["Fn::Sub"]
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}


def test_every_log_group_is_kept_log_retention_days_and_encrypted_with_the_stacks_key(template):
    groups = _of_type(template, "AWS::Logs::LogGroup")
    assert (
        len(groups) >= len(FUNCTIONS) + 3
    )  # the functions', the API's access log, the pipeline's, Firehose's
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": "OperationsKey.Arn"}, name
    # and the key lets CloudWatch Logs use it, for this account's log groups only
    statements = template["Resources"]["OperationsKey"]["Properties"]["KeyPolicy"]["Statement"]
    logs = next(s for s in statements if s.get("Sid") == "CloudWatchLogsEncrypt")
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    arn = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:")
    assert template["Resources"]["OperationsKey"]["Properties"]["EnableKeyRotation"] is True


# -- buckets ----------------------------------------------------------------------------------------------------------
def test_every_bucket_refuses_plain_http(template):
    buckets = set(_of_type(template, "AWS::S3::Bucket"))
    covered = set()
    for policy in _of_type(template, "AWS::S3::BucketPolicy").values():
        props = policy["Properties"]
        deny = [
            s
            for s in props["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert len(deny) == 1 and deny[0]["Action"] == "s3:*" and deny[0]["Principal"] == "*"
        bucket = props["Bucket"]["Ref"]
        assert len(deny[0]["Resource"]) == 2  # the bucket and its objects
        covered.add(bucket)
    assert covered == buckets


@pytest.mark.parametrize(
    ("bucket", "prefix"), [("RawBucket", "access-logs/raw/"), ("LakeBucket", "access-logs/lake/")]
)
def test_data_buckets_log_their_access_to_the_log_bucket(template, bucket, prefix):
    logging = template["Resources"][bucket]["Properties"]["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": {"Ref": "AccessLogBucket"}, "LogFilePrefix": prefix}
    # which admits S3's log delivery from exactly these buckets, under access-logs/
    policy = template["Resources"]["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    delivery = next(s for s in policy if s.get("Sid") == "S3ServerAccessLogs")
    assert delivery["Resource"] == {"Fn::Sub": "${AccessLogBucket.Arn}/access-logs/*"}
    name = template["Resources"][bucket]["Properties"]["BucketName"]["Fn::Sub"]
    assert {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{name}"} in delivery["Condition"]["ArnLike"][
        "aws:SourceArn"
    ]


def test_the_failure_topic_refuses_plain_http(template):
    statements = template["Resources"]["PipelineFailureTopicPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


# -- shoppers ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "tier"), [("AUDIT", "PLUS"), ("ENFORCED", "PLUS"), ("OFF", "ESSENTIALS")])
def test_shoppers_pool_has_threat_protection_deletion_protection_and_optional_mfa(template, mode, tier):
    params = parameters(template, ShopperThreatProtection=mode)
    pool = created(template, params)["UserPool"]["Properties"]
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": mode}
    assert pool["UserPoolTier"] == tier  # threat protection is a Plus-plan feature
    assert pool["DeletionProtection"] == "ACTIVE"
    assert pool["MfaConfiguration"] == "OPTIONAL" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert template["Parameters"]["ShopperThreatProtection"]["Default"] == "AUDIT"


# -- the API's web ACL ------------------------------------------------------------------------------------------------
def test_the_web_acl_is_optional_and_rate_limits_each_address(template):
    assert not {"IngestWebAcl", "IngestWebAclAssociation"} & set(created(template, parameters(template)))
    params = parameters(template, EnableWaf="true", WafRateLimitPerIp=500)
    resources = created(template, params)
    acl = resources["IngestWebAcl"]["Properties"]
    [rate] = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == 500
    assert "Block" in rate["Action"] and rate["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    assert acl["Scope"] == "REGIONAL" and "Allow" in acl["DefaultAction"]
    association = resources["IngestWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"Fn::GetAtt": "IngestWebAcl.Arn"}
    # on the API's stage (SAM's IngestApi.Stage names the stage it generates, so the association waits for it)
    assert association["ResourceArn"]["Fn::Sub"].endswith("/restapis/${IngestApi}/stages/${IngestApi.Stage}")


# -- concurrency ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("function", "parameter"),
    [("IngestFunction", "IngestReservedConcurrency"), ("ValidateFunction", "ValidateReservedConcurrency")],
)
def test_ingest_and_validate_reserve_concurrency_from_parameters(template, function, parameter):
    props = lambda **p: created(template, parameters(template, **p))[function]["Properties"]  # noqa: E731
    assert props(**{parameter: 25})["ReservedConcurrentExecutions"] == 25
    assert "ReservedConcurrentExecutions" not in props(**{parameter: 0})  # 0: the account's unreserved pool
    default = template["Parameters"][parameter]["Default"]
    assert default > 0


def test_validate_reserves_at_least_what_its_queue_may_run_at_once(template):
    queue_max = template["Resources"]["ValidateFunction"]["Properties"]["Events"]["RawObjects"]["Properties"][
        "ScalingConfig"
    ]["MaximumConcurrency"]
    assert template["Parameters"]["ValidateReservedConcurrency"]["Default"] >= queue_max


# -- checkov skips ----------------------------------------------------------------------------------------------------
def test_every_checkov_skip_names_a_check_and_says_why(template):
    skips = [
        (name, skip)
        for name, res in template["Resources"].items()
        for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert set(skip) == {"id", "comment"}, name
        assert skip["id"].startswith(("CKV_AWS_", "CKV2_AWS_")), name
        assert len(skip["comment"].split()) >= 8, (name, skip)  # a reason, not a label
    # one skip per check and resource, never a blanket list
    assert len({(n, s["id"]) for n, s in skips}) == len(skips)


def test_the_apis_skips_reach_the_stage_checkov_reads():
    cfn = translated()
    stage = next(r for r in cfn["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    api = load_template()["Resources"]["IngestApi"]
    assert stage["Metadata"]["checkov"] == api["Metadata"]["checkov"]


# -- the S3 prefix list lookup (a custom resource's inline code, run against moto) ------------------------------------
def _lookup_handler(template: dict[str, Any]):
    code = template["Resources"]["PrefixListLookupFunction"]["Properties"]["Code"]["ZipFile"]
    sent: list[tuple[str, dict[str, Any], str]] = []
    fake = types.ModuleType("cfnresponse")
    fake.SUCCESS, fake.FAILED = "SUCCESS", "FAILED"
    fake.send = lambda event, context, status, data, physical_id: sent.append((status, data, physical_id))
    namespace: dict[str, Any] = {}
    sys.modules["cfnresponse"] = fake
    try:
        exec(compile(code, "PrefixListLookupFunction", "exec"), namespace)
    finally:
        del sys.modules["cfnresponse"]
    return namespace["handler"], sent


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_prefix_list_lookup_answers_the_regions_s3_prefix_list(template, monkeypatch, region):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    handler, sent = _lookup_handler(template)
    name = resolve(
        template["Resources"]["S3PrefixList"]["Properties"]["PrefixListName"], template, parameters(template)
    )["Fn::Sub"].replace("${AWS::Region}", region)
    with mock_aws():
        expected = boto3.client("ec2", region_name=region).describe_managed_prefix_lists(
            Filters=[{"Name": "prefix-list-name", "Values": [name]}]
        )["PrefixLists"][0]["PrefixListId"]
        handler({"RequestType": "Create", "ResourceProperties": {"PrefixListName": name}}, None)
        handler(
            {"RequestType": "Create", "ResourceProperties": {"PrefixListName": "com.amazonaws.nowhere.s3"}},
            None,
        )
        handler({"RequestType": "Delete", "ResourceProperties": {"PrefixListName": name}}, None)
    assert sent[0] == ("SUCCESS", {"PrefixListId": expected}, expected)
    # an unknown name fails the deploy with a reason; a delete has nothing to undo
    assert sent[1][0] == "FAILED" and "0 managed prefix lists" in sent[1][1]["Reason"]
    assert sent[2][0] == "SUCCESS"
