"""The load and aggregate functions reach the warehouse in the cloud: the DSN from Secrets Manager, in the warehouse's
subnets, over TLS; and the warehouse the stack creates on request (CreateWarehouse).

The template's Conditions and Rules are evaluated for parameter sets a deployer would give (``tests/unit/infra/cfn``),
so the tests check what CloudFormation would create, or refuse, not only how the YAML looks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from clickstream.local.template import load_template
from tests.unit.infra.cfn import NO_VALUE, created, parameters, refusals, resolve, translated

WAREHOUSE_CLIENTS = ("LoadFunction", "AggregateFunction")
VPC_POLICY = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}
BYO = {"WarehouseSubnetIds": "subnet-a,subnet-b", "WarehouseVpcId": "vpc-1"}
ENDPOINT_SERVICES = {
    "com.amazonaws.${AWS::Region}.secretsmanager": "Interface",
    "com.amazonaws.${AWS::Region}.states": "Interface",
    "com.amazonaws.${AWS::Region}.sns": "Interface",
    "com.amazonaws.${AWS::Region}.s3": "Gateway",
    "com.amazonaws.${AWS::Region}.dynamodb": "Gateway",
}
WAREHOUSE_RESOURCES = {
    "WarehouseDatabase",
    "WarehouseSecret",
    "WarehouseSecretAttachment",
    "WarehouseSecretRotation",
    "WarehouseSubnetGroup",
    "WarehouseDatabaseSecurityGroup",
}
NETWORK_RESOURCES = {"WarehouseNetwork", "WarehouseSubnetA", "WarehouseSubnetB", "WarehouseRouteTable"}
S3_PREFIX_LIST = {"Fn::GetAtt": "S3PrefixList.PrefixListId"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _vpc_config(template: dict[str, Any], params: dict[str, Any], function: str) -> Any:
    return resolve(template["Resources"][function]["Properties"]["VpcConfig"], template, params)


def _role(template: dict[str, Any], params: dict[str, Any], function: str) -> dict[str, Any]:
    role_id = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"].split(".")[0]
    return created(template, params)[role_id]["Properties"]


def _egress(template: dict[str, Any], params: dict[str, Any]) -> list[tuple[int, Any]]:
    """The functions' security group egress rules, (port, destination), for ``params``."""
    rules = []
    for res in created(template, params).values():
        if res["Type"] == "AWS::EC2::SecurityGroupEgress":
            props = res["Properties"]
            assert props["GroupId"] == ("ref", "WarehouseFunctionSecurityGroup")
            kinds = ("CidrIp", "DestinationSecurityGroupId", "DestinationPrefixListId")
            rules.append((props["FromPort"], next(props[k] for k in kinds if k in props)))
    return sorted(rules, key=repr)


def _endpoints(template: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ServiceName"]["Fn::Sub"]: r["Properties"]
        for r in created(template, params).values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
    }


# -- a warehouse of your own ------------------------------------------------------------------------------------------
def test_without_a_vpc_the_functions_run_outside_one_with_no_vpc_permissions(template):
    params = parameters(template)
    for name in WAREHOUSE_CLIENTS:
        assert _vpc_config(template, params, name) == NO_VALUE
        # the VPC execution policy (network interfaces) only when in a VPC
        assert VPC_POLICY not in _role(template, params, name)["ManagedPolicyArns"]
    network = {"AWS::EC2::SecurityGroup", "AWS::EC2::VPCEndpoint", "AWS::EC2::VPC", "AWS::RDS::DBInstance"}
    assert not {r["Type"] for r in created(template, params).values()} & network


def test_in_given_subnets_with_a_security_group_the_stack_creates(template):
    # Given subnets and a VPC but no security groups (a warehouse of your own, AWS reached through your NAT)
    params = parameters(template, **BYO)
    assert refusals(template, params) == []
    # Then both warehouse clients run in those subnets with the stack's own security group
    for name in WAREHOUSE_CLIENTS:
        assert _vpc_config(template, params, name) == {
            "SubnetIds": ["subnet-a", "subnet-b"],
            "SecurityGroupIds": [("ref", "WarehouseFunctionSecurityGroup")],
        }
        assert VPC_POLICY in _role(template, params, name)["ManagedPolicyArns"]
    group = created(template, params)["WarehouseFunctionSecurityGroup"]["Properties"]
    # And that group has no default allow-all egress: only PostgreSQL and HTTPS
    assert [r["CidrIp"] for r in group["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    assert _egress(template, params) == [(443, "0.0.0.0/0"), (5432, "0.0.0.0/0")]
    # And no endpoints unless asked for
    assert not _endpoints(template, params)


def test_given_security_groups_are_used_as_they_are(template):
    params = parameters(template, WarehouseSubnetIds="subnet-a", WarehouseSecurityGroupIds="sg-1,sg-2")
    assert refusals(template, params) == []
    for name in WAREHOUSE_CLIENTS:
        assert _vpc_config(template, params, name)["SecurityGroupIds"] == ["sg-1", "sg-2"]
    assert "WarehouseFunctionSecurityGroup" not in created(template, params)


def test_private_subnets_get_the_endpoints_and_no_egress_to_anywhere_on_https(template):
    params = parameters(template, **BYO, WarehouseRouteTableIds="rtb-1", CreateWarehouseVpcEndpoints="true")
    endpoints = _endpoints(template, params)
    assert {name: e["VpcEndpointType"] for name, e in endpoints.items()} == ENDPOINT_SERVICES
    for endpoint in endpoints.values():
        if endpoint["VpcEndpointType"] == "Interface":
            assert endpoint["PrivateDnsEnabled"] is True  # the SDK's default endpoint names resolve to it
            assert endpoint["SubnetIds"] == ["subnet-a", "subnet-b"]
        else:
            assert endpoint["RouteTableIds"] == ["rtb-1"]
    # Then HTTPS leaves only to the interface endpoints and to S3's prefix list (the gateway endpoint's routes)
    assert _egress(template, params) == [
        (443, ("ref", "WarehouseEndpointSecurityGroup")),
        (443, S3_PREFIX_LIST),
        (5432, "0.0.0.0/0"),
    ]
    resources = created(template, params)
    endpoint_group = resources["WarehouseEndpointSecurityGroup"]["Properties"]
    assert [r["SourceSecurityGroupId"] for r in endpoint_group["SecurityGroupIngress"]] == [
        ("ref", "WarehouseFunctionSecurityGroup")
    ]
    assert [r["CidrIp"] for r in endpoint_group["SecurityGroupEgress"]] == ["255.255.255.255/32"]
    lookup = resources["S3PrefixList"]["Properties"]
    assert lookup["PrefixListName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}


def test_warehouse_clients_may_read_the_dsn_secret_and_nothing_else_can(template):
    secret = "arn:aws:secretsmanager:us-east-1:1:secret:wh"
    params = parameters(template, WarehouseSecretArn=secret)
    readers = set()
    for name, res in created(template, params).items():
        props = res["Properties"]
        policies = props.get("Policies", [])
        if res["Type"] == "AWS::Serverless::Function":
            assert not any("AWSSecretsManagerGetSecretValuePolicy" in p for p in policies), name
            documents = [p for p in policies if "Statement" in p]
        else:
            documents = [p["PolicyDocument"] for p in policies if "PolicyDocument" in p]
        for statement in (s for doc in documents for s in doc["Statement"]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("secretsmanager:") for a in actions):
                assert statement["Resource"] == secret, name
                readers.add(name)
    assert readers == {"LoadRole", "AggregateRole"}


# -- a warehouse created with the stack -------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["template", "translated"])
def test_create_warehouse_off_creates_none_of_it(template, source):
    # Given the template as written and as CloudFormation receives it (translated), with the defaults
    doc = template if source == "template" else translated()
    # Then no database, no secret, no network
    assert not (WAREHOUSE_RESOURCES | NETWORK_RESOURCES) & set(created(doc, parameters(doc)))
    assert set(doc["Resources"]) >= (WAREHOUSE_RESOURCES | NETWORK_RESOURCES)  # (the check does see them)


@pytest.mark.parametrize("source", ["template", "translated"])
def test_create_warehouse_makes_a_private_encrypted_database_in_a_vpc_of_its_own(template, source):
    doc = template if source == "template" else translated(CreateWarehouse="true")
    params = parameters(doc, CreateWarehouse="true")
    assert refusals(doc, params) == []
    resources = created(doc, params)
    assert set(resources) >= (WAREHOUSE_RESOURCES | NETWORK_RESOURCES)
    # a VPC with two private subnets in two zones and no way to the internet
    kinds = {r["Type"] for r in resources.values()}
    assert not kinds & {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Route"}
    subnets = [resources[n]["Properties"] for n in ("WarehouseSubnetA", "WarehouseSubnetB")]
    assert [s["AvailabilityZone"]["Fn::Select"][0] for s in subnets] == [0, 1]
    assert all(s["MapPublicIpOnLaunch"] is False for s in subnets)
    assert {name: e["VpcEndpointType"] for name, e in _endpoints(doc, params).items()} == ENDPOINT_SERVICES
    # the database: encrypted, private, in those subnets, reachable from the functions' group only
    db = resources["WarehouseDatabase"]
    props = db["Properties"]
    assert props["Engine"] == "postgres" and props["StorageEncrypted"] is True
    assert props["PubliclyAccessible"] is False and db["DeletionPolicy"] == "Snapshot"
    subnet_refs = [("ref", "WarehouseSubnetA"), ("ref", "WarehouseSubnetB")]
    assert resources["WarehouseSubnetGroup"]["Properties"]["SubnetIds"] == subnet_refs
    group = resources["WarehouseDatabaseSecurityGroup"]["Properties"]
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in group["SecurityGroupIngress"]] == [
        (5432, ("ref", "WarehouseFunctionSecurityGroup"))
    ]
    # the functions reach it, the endpoints and S3, and nothing else
    assert _egress(doc, params) == [
        (443, ("ref", "WarehouseEndpointSecurityGroup")),
        (443, S3_PREFIX_LIST),
        (5432, ("ref", "WarehouseDatabaseSecurityGroup")),
    ]
    # its credentials: a generated secret that the attachment completes with the instance's address, rotated
    password = "{{resolve:secretsmanager:${WarehouseSecret}:SecretString:password}}"
    assert props["MasterUserPassword"] == {"Fn::Sub": password}
    assert resources["WarehouseSecretAttachment"]["Properties"]["TargetId"] == ("ref", "WarehouseDatabase")
    rotation = resources["WarehouseSecretRotation"]["Properties"]
    assert rotation["SecretId"] == ("ref", "WarehouseSecretAttachment")
    assert rotation["HostedRotationLambda"]["RotationType"] == "PostgreSQLSingleUser"
    assert 0 < rotation["RotationRules"]["AutomaticallyAfterDays"] <= 90
    generated = resources["WarehouseSecret"]["Properties"]["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {
        "username": "clickstream",
        "dbname": props["DBName"],
        "engine": "postgres",
    }


def test_the_secret_the_stack_generates_is_one_the_functions_can_connect_with():
    # Given the secret as Secrets Manager holds it once the attachment added the instance's address
    from psycopg.conninfo import conninfo_to_dict

    from clickstream.warehouse.engine import dsn_from_secret

    generated = load_template()["Resources"]["WarehouseSecret"]["Properties"]["GenerateSecretString"]
    secret = json.loads(generated["SecretStringTemplate"]) | {
        generated["GenerateStringKey"]: "pa55word",
        "host": "wh.abc.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "dbInstanceIdentifier": "wh",
    }
    # When the functions build their DSN from it
    dsn = conninfo_to_dict(dsn_from_secret(json.dumps(secret)))
    # Then they reach the stack's database with TLS required
    assert dsn["host"] == secret["host"] and dsn["dbname"] == "clickstream" and dsn["user"] == "clickstream"
    assert dsn["sslmode"] == "require"


def test_the_created_warehouse_is_what_the_functions_read(template):
    params = parameters(template, CreateWarehouse="true")
    for name in WAREHOUSE_CLIENTS:
        env = resolve(template["Resources"][name]["Properties"]["Environment"]["Variables"], template, params)
        assert env["WAREHOUSE_SECRET_ARN"] == ("ref", "WarehouseSecret")
        statements = _role(template, params, name)["Policies"][0]["PolicyDocument"]["Statement"]
        secrets = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
        assert [s["Resource"] for s in secrets] == [("ref", "WarehouseSecret")]
        subnets = _vpc_config(template, params, name)["SubnetIds"]
        assert subnets == [("ref", "WarehouseSubnetA"), ("ref", "WarehouseSubnetB")]
        assert VPC_POLICY in _role(template, params, name)["ManagedPolicyArns"]


@pytest.mark.parametrize(("stage", "protected"), [("prod", True), ("dev", False)])
def test_the_warehouse_is_protected_from_deletion_in_prod(template, stage, protected):
    params = parameters(
        template, CreateWarehouse="true", Stage=stage, AllowedOrigin="https://shop.example.com"
    )
    assert created(template, params)["WarehouseDatabase"]["Properties"]["DeletionProtection"] is protected


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        (
            {"CreateWarehouse": "true", "WarehouseSecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:x"},
            ["CreatedWarehouseBringsItsOwnSecret"],
        ),
        ({"CreateWarehouse": "true", "WarehouseSubnetIds": "subnet-a"}, ["GivenSubnetsNeedTheirVpc"]),
        ({"WarehouseSubnetIds": "subnet-a"}, ["GivenSubnetsNeedTheirVpc"]),
        ({"WarehouseSubnetIds": "subnet-a", "WarehouseSecurityGroupIds": "sg-1"}, []),
        ({"CreateWarehouse": "true", **BYO}, []),
    ],
)
def test_inconsistent_warehouse_parameters_are_refused_at_deploy(template, given, refused):
    assert refusals(template, parameters(template, **given)) == refused


# -- the DSN and TLS ----------------------------------------------------------------------------------------------------
def test_the_dsn_comes_from_secrets_manager_with_tls_required(aws):
    # Given an RDS-style secret in Secrets Manager (moto), named by the settings
    from clickstream.adapters.aws import client
    from clickstream.warehouse.engine import warehouse_from_settings

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
    failures = refusals(template, parameters(template, WarehouseSslMode=mode, WarehouseSslRootCert=root_cert))
    # Then CloudFormation accepts exactly the consistent combinations
    assert (failures == []) is accepted, failures
