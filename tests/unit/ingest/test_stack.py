"""The API as the stack deploys it agrees with the handler: routes, authorization, guests, CORS, limits."""

from __future__ import annotations

import pytest

from clickstream.ingest.api import GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH, ROUTES
from clickstream.ingest.body import GZIP_MEDIA_TYPES
from clickstream_local.template import load_template

GUEST_PATHS = {GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH}


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_template()["Resources"]


def _api_events(resources: dict) -> dict[str, dict]:
    events = resources["IngestFunction"]["Properties"]["Events"]
    return {e["Properties"]["Path"]: e["Properties"] for e in events.values() if e["Type"] == "Api"}


def test_every_handler_route_is_deployed_and_nothing_else(resources):
    events = _api_events(resources)
    assert set(events) == set(ROUTES)
    assert all(e["Method"].upper() in ROUTES[path] for path, e in events.items())


def test_guest_routes_use_iam_and_the_others_the_user_pool(resources):
    api_auth = resources["IngestApi"]["Properties"]["Auth"]
    assert api_auth["DefaultAuthorizer"] == "CognitoAuthorizer"
    for path, event in _api_events(resources).items():
        if path in GUEST_PATHS:
            # IAM authorization, and API Gateway (not the guest's credentials) invokes the function
            assert event["Auth"] == {"Authorizer": "AWS_IAM", "InvokeRole": "NONE"}
        else:
            assert "Auth" not in event  # the default: the Cognito User Pool authorizer


def test_identity_pool_admits_unauthenticated_visitors_and_links_the_user_pool(resources):
    pool = resources["GuestIdentityPool"]["Properties"]
    assert pool["AllowUnauthenticatedIdentities"] is True
    assert pool["AllowClassicFlow"] is False
    [provider] = pool["CognitoIdentityProviders"]
    assert provider["ClientId"] == {"Ref": "UserPoolClient"}
    attachment = resources["GuestIdentityPoolRoles"]["Properties"]
    assert attachment["IdentityPoolId"] == {"Ref": "GuestIdentityPool"}
    assert set(attachment["Roles"]) == {"unauthenticated"}


def test_guest_role_may_only_invoke_the_guest_routes(resources):
    role = resources["GuestRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"] == {
        "cognito-identity.amazonaws.com:aud": {"Ref": "GuestIdentityPool"}
    }
    assert trust["Condition"]["ForAnyValue:StringLike"] == {
        "cognito-identity.amazonaws.com:amr": "unauthenticated"
    }
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in statements] == ["execute-api:Invoke"]
    arns = [r["Fn::Sub"] for r in statements[0]["Resource"]]
    assert sorted(a.rsplit("/POST", 1)[1] for a in arns) == sorted(GUEST_PATHS)
    assert all("${IngestApi}/${Stage}/POST/" in a and "*" not in a for a in arns)


def test_every_route_has_its_own_throttling(resources):
    settings = resources["IngestApi"]["Properties"]["MethodSettings"]
    by_path = {s["ResourcePath"]: s for s in settings}
    for path in ROUTES:
        setting = by_path["/" + path.replace("/", "~1")]
        assert setting["HttpMethod"] == "POST"
        limit = "GuestThrottleRateLimit" if path in GUEST_PATHS else "ApiThrottleRateLimit"
        assert setting["ThrottlingRateLimit"] == {"Ref": limit}
        assert "ThrottlingBurstLimit" in setting


def test_preflight_is_api_gateways_without_a_token_and_allows_sigv4_headers(resources):
    props = resources["IngestApi"]["Properties"]
    assert props["Auth"]["AddDefaultAuthorizerToCorsPreflight"] is False
    allowed = set(props["Cors"]["AllowHeaders"].strip("'").split(","))
    assert {
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "X-Amz-Date",
        "X-Amz-Security-Token",
    } <= allowed


@pytest.mark.parametrize(
    "response_type",
    [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "REQUEST_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "THROTTLED",
        "DEFAULT_4XX",
    ],
)
def test_gateway_answers_are_json_with_cors(resources, response_type):
    response = resources["IngestApi"]["Properties"]["GatewayResponses"][response_type]
    assert "Access-Control-Allow-Origin" in response["ResponseParameters"]["Headers"]
    assert response["ResponseTemplates"]["application/json"].startswith('{"error":{"code":')


def test_binary_media_types_are_the_gzip_types_the_handler_reads(resources):
    types = resources["IngestApi"]["Properties"]["BinaryMediaTypes"]
    assert {t.replace("~1", "/") for t in types} == GZIP_MEDIA_TYPES
