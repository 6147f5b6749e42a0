"""The load and aggregate functions reach the warehouse in the cloud: the DSN from Secrets Manager, in the warehouse's
subnets, over TLS.

The template's Conditions are evaluated for parameter sets a deployer would give (a tiny evaluator of the intrinsic
functions they use), so the test checks what CloudFormation would create, not only how the YAML looks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream_local.template import load_template

WAREHOUSE_CLIENTS = ("LoadFunction", "AggregateFunction")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _params(template: dict[str, Any], **given: Any) -> dict[str, Any]:
    values = {}
    for name, spec in template["Parameters"].items():
        value = given.get(name, spec.get("Default"))
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",") if value else [""]
        values[name] = value
    return values


def _resolve(node: Any, template: dict[str, Any], params: dict[str, Any]) -> Any:
    """Evaluate the intrinsic functions the Conditions and VpcConfig use (Refs to resources stay symbolic)."""
    if isinstance(node, list):
        return [_resolve(n, template, params) for n in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return params.get(arg, ("ref", arg))
        if fn in ("Condition", "Fn::Condition"):  # the long form, and the short form as the loader reads it
            return _condition(arg, template, params)
        if fn == "Fn::Not":
            return not _resolve(arg[0], template, params)
        if fn == "Fn::And":
            return all(_resolve(a, template, params) for a in arg)
        if fn == "Fn::Equals":
            left, right = (_resolve(a, template, params) for a in arg)
            return left == right
        if fn == "Fn::Join":
            return arg[0].join(_resolve(arg[1], template, params))
        if fn == "Fn::If":
            name, yes, no = arg
            return _resolve(yes if _condition(name, template, params) else no, template, params)
        if fn.startswith("Fn::") and fn not in ("Fn::Sub", "Fn::Select", "Fn::GetAtt"):
            raise NotImplementedError(fn)
    return {k: _resolve(v, template, params) for k, v in node.items()}


def _condition(name: str, template: dict[str, Any], params: dict[str, Any]) -> bool:
    return bool(_resolve(template["Conditions"][name], template, params))


def _created(template: dict[str, Any], params: dict[str, Any]) -> set[str]:
    return {
        name
        for name, res in template["Resources"].items()
        if "Condition" not in res or _condition(res["Condition"], template, params)
    }


def test_without_a_vpc_the_functions_run_outside_one(template):
    params = _params(template)
    for name in WAREHOUSE_CLIENTS:
        vpc = _resolve(template["Resources"][name]["Properties"]["VpcConfig"], template, params)
        assert vpc == ("ref", "AWS::NoValue")
    assert not {"WarehouseFunctionSecurityGroup", "SecretsManagerEndpoint"} & _created(template, params)


def test_in_the_warehouse_subnets_with_a_security_group_the_stack_creates(template):
    # Given subnets and a VPC but no security groups
    params = _params(template, WarehouseSubnetIds="subnet-a,subnet-b", WarehouseVpcId="vpc-1")
    created = _created(template, params)
    # Then both warehouse clients run in those subnets with the stack's own security group
    for name in WAREHOUSE_CLIENTS:
        vpc = _resolve(template["Resources"][name]["Properties"]["VpcConfig"], template, params)
        assert vpc == {
            "SubnetIds": ["subnet-a", "subnet-b"],
            "SecurityGroupIds": [("ref", "WarehouseFunctionSecurityGroup")],
        }
    assert "WarehouseFunctionSecurityGroup" in created
    # And that group only lets them out to PostgreSQL and HTTPS
    egress = template["Resources"]["WarehouseFunctionSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert sorted((rule["FromPort"], rule["ToPort"]) for rule in egress) == [(443, 443), (5432, 5432)]
    # And no endpoints unless asked for
    assert not {"SecretsManagerEndpoint", "S3GatewayEndpoint"} & created


def test_given_security_groups_are_used_as_they_are(template):
    params = _params(template, WarehouseSubnetIds="subnet-a", WarehouseSecurityGroupIds="sg-1,sg-2")
    for name in WAREHOUSE_CLIENTS:
        vpc = _resolve(template["Resources"][name]["Properties"]["VpcConfig"], template, params)
        assert vpc["SecurityGroupIds"] == ["sg-1", "sg-2"]
    assert "WarehouseFunctionSecurityGroup" not in _created(template, params)


def test_private_subnets_get_the_endpoints_the_functions_call(template):
    params = _params(
        template,
        WarehouseSubnetIds="subnet-a",
        WarehouseVpcId="vpc-1",
        WarehouseRouteTableIds="rtb-1",
        CreateWarehouseVpcEndpoints="true",
    )
    created = _created(template, params)
    endpoints = {
        _resolve(template["Resources"][n]["Properties"]["ServiceName"], template, params)["Fn::Sub"]: n
        for n in created
        if template["Resources"][n]["Type"] == "AWS::EC2::VPCEndpoint"
    }
    assert set(endpoints) == {
        "com.amazonaws.${AWS::Region}.secretsmanager",
        "com.amazonaws.${AWS::Region}.s3",
        "com.amazonaws.${AWS::Region}.dynamodb",
    }
    secrets = template["Resources"][endpoints["com.amazonaws.${AWS::Region}.secretsmanager"]]["Properties"]
    assert secrets["PrivateDnsEnabled"] is True  # the SDK's default endpoint name resolves to it
    ingress = template["Resources"]["WarehouseEndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert _resolve(ingress[0]["SourceSecurityGroupId"], template, params) == (
        "ref",
        "WarehouseFunctionSecurityGroup",
    )


def test_warehouse_clients_may_read_the_dsn_secret_and_nothing_else_can(template):
    params = _params(template, WarehouseSecretArn="arn:aws:secretsmanager:us-east-1:1:secret:wh")
    readers = set()
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for policy in _resolve(res["Properties"].get("Policies", []), template, params):
            if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy:
                assert (
                    policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
                    == params["WarehouseSecretArn"]
                )
                readers.add(name)
    assert readers == set(WAREHOUSE_CLIENTS)


def test_the_dsn_comes_from_secrets_manager_with_tls_required(aws):
    # Given an RDS-style secret in Secrets Manager (moto), named by the settings
    from clickstream.adapters.aws import client
    from clickstream.adapters.warehouse import warehouse_from_settings

    secret = {"engine": "postgres", "host": "db.internal", "port": 5432, "username": "app", "password": "p w"}
    arn = client("secretsmanager").create_secret(Name="warehouse", SecretString=json.dumps(secret))["ARN"]
    settings = aws.settings.replace(warehouse_url="", warehouse_secret_arn=arn)
    # When the functions build their warehouse from the settings
    warehouse = warehouse_from_settings(settings)
    # Then it is PostgreSQL at that host, and the connection requires TLS
    from psycopg.conninfo import conninfo_to_dict

    dsn = conninfo_to_dict(warehouse.target)
    assert warehouse.dialect == "postgresql"
    assert dsn["host"] == "db.internal" and dsn["user"] == "app" and dsn["password"] == "p w"
    assert dsn["sslmode"] == "require"


@pytest.mark.parametrize("function", WAREHOUSE_CLIENTS)
def test_warehouse_clients_get_the_tls_parameters_with_the_settings_defaults(template, function):
    # Given the warehouse clients' environment
    from clickstream.core.config import Settings

    env = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    # Then the TLS mode and root certificate come from the stack's parameters
    assert env["WAREHOUSE_SSLMODE"] == {"Ref": "WarehouseSslMode"}
    assert env["WAREHOUSE_SSLROOTCERT"] == {"Ref": "WarehouseSslRootCert"}
    # And a deploy with defaults behaves like a local run with defaults (TLS required, no root certificate)
    params = template["Parameters"]
    assert params["WarehouseSslMode"]["Default"] == Settings().warehouse_sslmode == "require"
    assert params["WarehouseSslRootCert"]["Default"] == Settings().warehouse_sslrootcert == ""
    assert set(params["WarehouseSslMode"]["AllowedValues"]) == {"require", "verify-ca", "verify-full"}


@pytest.mark.parametrize(
    ("mode", "root_cert", "accepted"),
    [
        ("require", "", True),
        ("verify-full", "/opt/certs/global-bundle.pem", True),
        ("verify-ca", "system", True),
        ("verify-full", "", False),
        ("verify-ca", "", False),
    ],
)
def test_a_verifying_tls_mode_without_a_root_certificate_is_refused_at_deploy(
    template, mode, root_cert, accepted
):
    # Given the stack's rules evaluated for these parameters
    params = _params(template, WarehouseSslMode=mode, WarehouseSslRootCert=root_cert)
    failures = [
        name
        for name, rule in template["Rules"].items()
        if _resolve(rule.get("RuleCondition", True), template, params)
        and not all(_resolve(a["Assert"], template, params) for a in rule["Assertions"])
    ]
    # Then CloudFormation accepts exactly the consistent combinations
    assert (failures == []) is accepted, failures
