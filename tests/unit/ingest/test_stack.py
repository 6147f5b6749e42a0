"""The API as the stack deploys it agrees with the handler: routes, authorization, guests, CORS, limits."""

from __future__ import annotations

import copy
import json

import pytest

from clickstream.core.config import Settings
from clickstream.ingest.api import (
    GUEST_NATIVE_PATH,
    GUEST_SNOWPLOW_PATH,
    PREFLIGHT_ALLOW_HEADERS,
    PREFLIGHT_ALLOW_METHODS,
    PREFLIGHT_MAX_AGE_SECONDS,
    ROUTES,
    app,
)
from clickstream.ingest.body import GZIP_MEDIA_TYPES
from clickstream.local.template import load_template
from tests.conftest import load_event
from tests.unit.infra.cfn import parameters, refusals, resolve, samconfig_parameters, translated

GUEST_PATHS = {GUEST_NATIVE_PATH, GUEST_SNOWPLOW_PATH}
SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def _api_events(resources: dict, method: str = "POST") -> dict[str, dict]:
    events = resources["IngestFunction"]["Properties"]["Events"]
    return {
        e["Properties"]["Path"]: e["Properties"]
        for e in events.values()
        if e["Type"] == "Api" and e["Properties"]["Method"].upper() == method
    }


def test_every_handler_route_is_deployed_and_nothing_else(resources):
    events = resources["IngestFunction"]["Properties"]["Events"].values()
    deployed = {
        (e["Properties"]["Path"], e["Properties"]["Method"].upper()) for e in events if e["Type"] == "Api"
    }
    # Then each route's POST, and its CORS preflight, reach the function; no other route does
    assert deployed == {(path, m) for path, methods in ROUTES.items() for m in methods | {"OPTIONS"}}


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


# -- CORS: the preflight is the function's ------------------------------------------------------------------------
def test_every_preflight_reaches_the_function_without_authorization(resources):
    # Given the routes' OPTIONS events
    preflights = _api_events(resources, "OPTIONS")
    # Then every route has one, and none asks for a token or a signature (browsers send neither with a preflight)
    assert set(preflights) == set(ROUTES)
    assert all(e["Auth"] == {"Authorizer": "NONE"} for e in preflights.values())
    assert resources["IngestApi"]["Properties"]["Auth"]["AddDefaultAuthorizerToCorsPreflight"] is False


def test_the_deployed_api_answers_no_preflight_itself():
    # Given the API as CloudFormation receives it (SAM's mock preflight would be a MOCK integration)
    body = translated()["Resources"]["IngestApi"]["Properties"]["Body"]
    # Then every method of every path is the function (a Lambda proxy), and OPTIONS needs no authorization
    for path, item in body["paths"].items():
        for method, operation in item.items():
            assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy", (path, method)
            if method == "options":
                assert operation["security"] == [{"NONE": []}], path
        assert set(item) == {"post", "options"}, path


def test_the_templates_cors_block_states_the_functions_preflight_answer(resources):
    # Given the block local emulators (clickstream serve, sam local start-api) read the preflight from
    cors = resources["IngestApi"]["Properties"]["Cors"]
    # Then it says what the function answers
    assert cors["AllowMethods"].strip("'") == PREFLIGHT_ALLOW_METHODS
    assert cors["AllowHeaders"].strip("'") == PREFLIGHT_ALLOW_HEADERS
    assert int(cors["MaxAge"].strip("'")) == PREFLIGHT_MAX_AGE_SECONDS
    allowed = set(PREFLIGHT_ALLOW_HEADERS.split(","))
    # the tracker's token, gzip bodies, and the guest routes' SigV4 headers
    assert {
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "X-Amz-Date",
        "X-Amz-Security-Token",
    } <= allowed


def _preflight(path: str, origin: str | None, allowed_origins: str) -> tuple[int, dict[str, str], str]:
    event = copy.deepcopy(load_event("ingest_native.json"))
    event["requestContext"].pop("authorizer", None)
    headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    } | ({"Origin": origin} if origin else {})
    event.update(httpMethod="OPTIONS", path=path, body=None, headers=headers)
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    app.append_context(settings=Settings(allowed_origins=allowed_origins))
    answer = app.resolve(event, None)
    flat = {k: v[0] for k, v in answer["multiValueHeaders"].items()}
    return answer["statusCode"], flat, answer["body"]


@pytest.mark.parametrize("path", sorted(ROUTES))
@pytest.mark.parametrize("origin", [SHOP, "https://m.shop.example.com"])
def test_the_functions_preflight_echoes_an_allowed_origin_with_credentials(path, origin):
    # Given origins named and by pattern, as a store configures AllowedOrigin
    allowed = f"{SHOP},https://*.shop.example.com"
    # When a browser on one of them asks before posting with credentials: 'include'
    status, headers, body = _preflight(path, origin, allowed)
    # Then the answer names that origin and allows credentials, methods, headers and a max-age
    assert status == 204 and body == ""
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Access-Control-Allow-Methods"] == PREFLIGHT_ALLOW_METHODS
    assert headers["Access-Control-Allow-Headers"] == PREFLIGHT_ALLOW_HEADERS
    assert headers["Access-Control-Max-Age"] == str(PREFLIGHT_MAX_AGE_SECONDS)
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example.net", "https://shop.example.com.evil.net", None])
def test_the_functions_preflight_refuses_a_foreign_origin_without_cors_headers(origin):
    status, headers, body = _preflight("/v1/events", origin, f"{SHOP},https://*.shop.example.com")
    assert status == 403
    assert not any(h.lower().startswith("access-control-") for h in headers)
    assert json.loads(body)["error"]["code"] == "origin_not_allowed"


def test_with_every_origin_allowed_the_preflight_never_offers_credentials():
    status, headers, _ = _preflight("/v1/events", SHOP, "*")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers


# -- CORS: API Gateway's own answers ---------------------------------------------------------------------------------
def _gateway_headers(template: dict, allowed_origin: str) -> dict[str, dict[str, str]]:
    params = parameters(template, AllowedOrigin=allowed_origin)
    responses = template["Resources"]["IngestApi"]["Properties"]["GatewayResponses"]
    return {
        kind: resolve(r["ResponseParameters"]["Headers"], template, params) for kind, r in responses.items()
    }


def test_gateway_answers_echo_the_origin_with_credentials_when_origins_are_named(template):
    # Given a store's origins
    for kind, headers in _gateway_headers(template, f"{SHOP},https://*.shop.example.com").items():
        # Then API Gateway's own refusals (401, 403, 413, 429, its 5xx …) echo the request's Origin with
        # credentials, so the page reads why it was refused (what that echo exposes: the template's comment)
        assert headers["Access-Control-Allow-Origin"] == "method.request.header.Origin", kind
        assert headers["Access-Control-Allow-Credentials"] == "'true'", kind
        assert headers["Vary"] == "'Origin'", kind


def test_gateway_answers_to_every_origin_never_offer_credentials(template):
    for kind, headers in _gateway_headers(template, "*").items():
        assert headers["Access-Control-Allow-Origin"] == "'*'", kind
        assert "Access-Control-Allow-Credentials" not in headers, kind


# -- AllowedOrigin at deploy time --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "origin", "refused"),
    [
        ("dev", "*", []),
        ("dev", SHOP, []),
        ("prod", SHOP, []),
        ("prod", f"{SHOP},https://*.shop.example.com,http://localhost:3000", []),
        ("prod", "*", ["ProductionNamesItsOrigins"]),
        # a bare * among origins would allow every origin with credentials: refused on any stage
        ("dev", f"{SHOP},*", ["AllowedOrigin: does not match AllowedPattern"]),
        ("prod", "", ["AllowedOrigin: does not match AllowedPattern"]),
        ("prod", "shop.example.com", ["AllowedOrigin: does not match AllowedPattern"]),
        ("prod", f"{SHOP}/path", ["AllowedOrigin: does not match AllowedPattern"]),
    ],
)
def test_allowed_origin_is_checked_before_anything_is_deployed(template, stage, origin, refused):
    assert refusals(template, parameters(template, Stage=stage, AllowedOrigin=origin)) == refused


def test_the_prod_configuration_deploys_only_once_it_names_the_stores_origin(template):
    # Given samconfig.toml's prod parameters as shipped (the store fills in its own values)
    prod = samconfig_parameters("prod")
    assert prod["Stage"] == "prod" and "AllowedOrigin" not in prod
    # Then a prod deploy is refused until AllowedOrigin names the store's origin, and accepted with it
    assert refusals(template, parameters(template, **prod)) == ["ProductionNamesItsOrigins"]
    assert refusals(template, parameters(template, **prod, AllowedOrigin=SHOP)) == []
    # and the dev configuration deploys with the defaults
    assert refusals(template, parameters(template, **samconfig_parameters("dev"))) == []


def test_binary_media_types_are_the_gzip_types_the_handler_reads(resources):
    types = resources["IngestApi"]["Properties"]["BinaryMediaTypes"]
    assert {t.replace("~1", "/") for t in types} == GZIP_MEDIA_TYPES
