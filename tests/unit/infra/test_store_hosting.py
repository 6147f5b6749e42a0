"""The store in the stack (``template.yaml``, StoreHosting): a private bucket only the distribution reads, the
distribution answering the store's contract (web/README.md) and passing the API's paths to the API uncached, the
routes function, the Hosted UI's client and domain, and the outputs ``clickstream deploy-web`` reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from fnmatch import fnmatchcase
from typing import Any

import pytest

from clickstream_cli.commands.deploy_web import STACK_OUTPUTS
from clickstream_local.template import load_template
from tests.unit.infra.cfn import GetAtt, created, parameters, references, refusals, resolve, translated

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
STORE_RESOURCES = {
    "StoreBucket",
    "StoreBucketPolicy",
    "StoreLogBucket",
    "StoreLogBucketPolicy",
    "StoreOriginAccessControl",
    "StoreRoutesFunction",
    "StoreResponseHeadersPolicy",
    "StoreDistribution",
}
# The store's own routes (web/store/src/routes.js): each must reach index.html through the default behavior.
STORE_ROUTES = (
    "/",
    "/c/laptops",
    "/p/LAP-0001/apple-macbook-air-13-m3-8gb-256gb",
    "/p/CAB-0007/usb-c-cable-3.2",
    "/search",
    "/cart",
    "/checkout",
    "/checkout/payment",
    "/checkout/confirmation",
    "/account",
    "/auth/callback",
    "/auth/callback/",
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _stack(template: dict[str, Any], region: str = "eu-west-1", **given: Any) -> dict[str, dict[str, Any]]:
    params = parameters(template, **given)
    params["AWS::Region"] = region
    return created(template, params)


def _distribution(template: dict[str, Any], **given: Any) -> dict[str, Any]:
    return _stack(template, **given)["StoreDistribution"]["Properties"]["DistributionConfig"]


def _behavior(config: dict[str, Any], path: str) -> dict[str, Any]:
    """The behavior CloudFront picks for ``path``: the first path pattern that matches, else the default."""
    for behavior in config["CacheBehaviors"]:
        if fnmatchcase(path, behavior["PathPattern"]):
            return behavior
    return config["DefaultCacheBehavior"]


def _api_paths(template: dict[str, Any]) -> set[str]:
    events = template["Resources"]["IngestFunction"]["Properties"]["Events"].values()
    return {e["Properties"]["Path"] for e in events if e["Type"] == "Api"}


# -- the bucket -------------------------------------------------------------------------------------------------------
def test_the_store_bucket_is_private_versioned_encrypted_and_logged(template):
    bucket = _stack(template)["StoreBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert bucket["LoggingConfiguration"] == {
        "DestinationBucketName": ("ref", "AccessLogBucket"),
        "LogFilePrefix": "access-logs/store/",
    }
    # and the log bucket admits S3's deliveries from it
    statements = template["Resources"]["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    delivery = next(s for s in statements if s.get("Sid") == "S3ServerAccessLogs")
    name = template["Resources"]["StoreBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{name}"} in delivery["Condition"]["ArnLike"][
        "aws:SourceArn"
    ]


def test_only_the_distribution_reads_the_store_bucket_and_only_over_tls(template):
    statements = _stack(template)["StoreBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "DistributionReadsTheStore",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${StoreBucket.Arn}/*"},
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${StoreDistribution}"
                    }
                }
            },
        }
    ]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"


def test_the_store_origin_is_read_through_origin_access_control(template):
    stack = _stack(template)
    origins = {o["Id"]: o for o in stack["StoreDistribution"]["Properties"]["DistributionConfig"]["Origins"]}
    store = origins["store"]
    assert store["DomainName"] == GetAtt("StoreBucket", "RegionalDomainName")
    assert store["OriginAccessControlId"] == GetAtt("StoreOriginAccessControl", "Id")
    assert store["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy origin access identity
    oac = stack["StoreOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )


# -- the distribution -------------------------------------------------------------------------------------------------
def test_every_api_path_goes_to_the_api_uncached_with_the_viewers_headers(template):
    config = _distribution(template)
    origins = {o["Id"]: o for o in config["Origins"]}
    api = origins["api"]
    assert api["DomainName"] == {"Fn::Sub": "${IngestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert api["OriginPath"] == {"Fn::Sub": "/${Stage}"}  # the API's stage: /v1/events → /<stage>/v1/events
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    paths = _api_paths(template)
    assert paths >= {"/v1/events", "/v1/guest/events", "/guest/com.snowplowanalytics.snowplow/tp2"}
    for path in paths:
        behavior = _behavior(config, path)
        assert behavior["TargetOriginId"] == "api", path
        assert behavior["CachePolicyId"] == CACHING_DISABLED, path
        assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST, path
        assert {"POST", "OPTIONS"} <= set(behavior["AllowedMethods"]), path
        assert behavior["ViewerProtocolPolicy"] == "https-only", (
            path
        )  # a POST redirected from http loses its body
        assert "FunctionAssociations" not in behavior, path


def test_the_stores_files_are_cached_as_the_contract_says(template):
    config = _distribution(template)
    assert _behavior(config, "/assets/app-3f2a9c.js")["CachePolicyId"] == CACHING_OPTIMIZED
    for path in ("/index.html", "/config.json", "/", "/c/laptops"):
        behavior = _behavior(config, path)
        assert behavior["TargetOriginId"] == "store", path
        assert behavior["CachePolicyId"] == CACHING_DISABLED, path
    assert config["DefaultRootObject"] == "index.html"
    every = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    store = [b for b in every if b["TargetOriginId"] == "store"]
    assert {b["ViewerProtocolPolicy"] for b in store} == {"redirect-to-https"}
    assert {b["ResponseHeadersPolicyId"] for b in every} == {("ref", "StoreResponseHeadersPolicy")}
    assert config["HttpVersion"] == "http2and3"
    assert config["Logging"]["Bucket"] == GetAtt("StoreLogBucket", "DomainName")


def test_the_routes_function_runs_on_the_default_behavior_only(template):
    config = _distribution(template)
    assert config["DefaultCacheBehavior"]["FunctionAssociations"] == [
        {
            "EventType": "viewer-request",
            "FunctionARN": GetAtt("StoreRoutesFunction", "FunctionMetadata.FunctionARN"),
        }
    ]
    assert all("FunctionAssociations" not in b for b in config["CacheBehaviors"])
    # and no custom error response turns the API's 403/404 into the store's page
    assert "CustomErrorResponses" not in config


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the CloudFront function's code")
def test_the_routes_function_answers_store_routes_with_index_html_and_leaves_files_alone(template):
    code = template["Resources"]["StoreRoutesFunction"]["Properties"]["FunctionCode"]
    files = ["/index.html", "/config.json", "/assets/app-3f2a9c.js", "/assets/app-3f2a9c.css", "/robots.txt"]
    script = (
        code
        + "\nconst uris = JSON.parse(process.argv[1]);"
        + "\nconsole.log(JSON.stringify(uris.map((uri) => handler({request: {uri, querystring: {}}}).uri)));"
    )
    uris = [*STORE_ROUTES, *files]
    answer = subprocess.run(
        ["node", "-e", script, json.dumps(uris)], capture_output=True, text=True, check=True, timeout=30
    )
    rewritten = dict(zip(uris, json.loads(answer.stdout), strict=True))
    assert {uri: rewritten[uri] for uri in STORE_ROUTES} == dict.fromkeys(STORE_ROUTES, "/index.html")
    assert {uri: rewritten[uri] for uri in files} == {uri: uri for uri in files}


def test_the_content_security_policy_allows_what_the_store_loads_and_nothing_inline(template):
    policy = _stack(template)["StoreResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    headers = policy["SecurityHeadersConfig"]
    text, values = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    directives = {d.split()[0]: d.split()[1:] for d in " ".join(text.split()).split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert set(directives["connect-src"]) == {
        "'self'",
        "https://${IngestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}",
        "https://cognito-identity.${AWS::Region}.${AWS::URLSuffix}",
        "https://${AuthDomain}.auth.${AWS::Region}.amazoncognito.com",
    }
    assert values == {"AuthDomain": ("ref", "UserPoolDomain")}
    assert "unsafe" not in text
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


# -- switches and protection ------------------------------------------------------------------------------------------
def test_store_hosting_disabled_creates_no_store_resources_and_no_hosted_ui(template):
    stack = _stack(template, StoreHosting="disabled")
    assert not STORE_RESOURCES & set(stack)
    assert "UserPoolDomain" not in stack
    client = stack["UserPoolClient"]["Properties"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is False
    assert "CallbackURLs" not in client and "AllowedOAuthFlows" not in client
    # and everything else is still there
    assert {"IngestApi", "UserPool", "UserPoolClient", "GuestIdentityPool"} <= set(stack)


def test_the_distribution_gets_a_cloudfront_web_acl_only_where_one_can_exist(template):
    # EnableWaf in us-east-1: the stack's own CLOUDFRONT-scope web ACL
    stack = _stack(template, region="us-east-1", EnableWaf="true")
    assert stack["StoreWebAcl"]["Properties"]["Scope"] == "CLOUDFRONT"
    assert stack["StoreDistribution"]["Properties"]["DistributionConfig"]["WebACLId"] == GetAtt(
        "StoreWebAcl", "Arn"
    )
    # elsewhere: none, unless StoreWebAclArn names one (the API keeps its regional web ACL)
    stack = _stack(template, region="eu-west-1", EnableWaf="true")
    assert "StoreWebAcl" not in stack and "IngestWebAcl" in stack
    assert "WebACLId" not in stack["StoreDistribution"]["Properties"]["DistributionConfig"]
    arn = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/0f1e2d3c"
    stack = _stack(template, region="eu-west-1", StoreWebAclArn=arn)
    assert stack["StoreDistribution"]["Properties"]["DistributionConfig"]["WebACLId"] == arn
    assert "WebACLId" not in _distribution(template)


def test_an_own_domain_needs_a_us_east_1_certificate_and_gets_tls_1_2(template):
    params = parameters(template, StoreDomainName="shop.example.com")
    assert refusals(template, params) == ["StoreDomainNeedsACertificate"]
    cert = "arn:aws:acm:eu-west-1:123456789012:certificate/1b2c3d4e-0000-1111-2222-333344445555"
    assert "StoreCertificateArn: does not match AllowedPattern" in refusals(
        template, parameters(template, StoreDomainName="shop.example.com", StoreCertificateArn=cert)
    )
    cert = cert.replace("eu-west-1", "us-east-1")
    config = _distribution(template, StoreDomainName="shop.example.com", StoreCertificateArn=cert)
    assert config["Aliases"] == ["shop.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": cert,
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert _distribution(template)["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}


# -- the Hosted UI ----------------------------------------------------------------------------------------------------
def test_the_web_client_signs_in_with_the_code_flow_and_pkce_back_to_the_store(template):
    client = _stack(template)["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # a public client: PKCE, no secret in the browser
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["CallbackURLs"] == [{"Fn::Sub": "https://${StoreDistribution.DomainName}/auth/callback"}]
    assert client["LogoutURLs"] == [{"Fn::Sub": "https://${StoreDistribution.DomainName}/"}]
    # what the API's authorizer and the identity pool rely on stays as it was
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert client["UserPoolId"] == ("ref", "UserPool")
    # an own domain is a second origin the Hosted UI returns to
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/1b2c3d4e-0000-1111-2222-333344445555"
    client = _stack(template, StoreDomainName="shop.example.com", StoreCertificateArn=cert)["UserPoolClient"]
    assert client["Properties"]["CallbackURLs"][1] == {"Fn::Sub": "https://${StoreDomainName}/auth/callback"}
    # the store hosted elsewhere still signs in there
    client = _stack(template, StoreHosting="disabled", StoreDomainName="shop.example.com")["UserPoolClient"]
    assert client["Properties"]["CallbackURLs"] == [{"Fn::Sub": "https://${StoreDomainName}/auth/callback"}]


def test_the_hosted_ui_domain_defaults_to_a_name_of_the_stage_and_account(template):
    domain = _stack(template)["UserPoolDomain"]["Properties"]
    assert domain["UserPoolId"] == ("ref", "UserPool")
    assert domain["Domain"] == {"Fn::Sub": "clickstream-${Stage}-${AWS::AccountId}"}
    assert _stack(template, AuthDomainPrefix="example-shop")["UserPoolDomain"]["Properties"]["Domain"] == (
        "example-shop"
    )
    for bad in ("-shop", "Shop", "shop-", "shop.example"):
        assert refusals(template, parameters(template, AuthDomainPrefix=bad)), bad


def test_the_outputs_deploy_web_reads_are_there_when_the_stack_hosts_the_store(template):
    outputs = template["Outputs"]
    assert set(STACK_OUTPUTS) <= set(outputs)
    params = parameters(template)
    for name in STACK_OUTPUTS:
        condition = outputs[name].get("Condition")
        assert condition is None or resolve({"Condition": condition}, template, params), name
    assert resolve(outputs["StoreUrl"]["Value"], template, params) == {
        "Fn::Sub": "https://${StoreDistribution.DomainName}"
    }
    assert outputs["StoreDistributionId"]["Value"] == {"Ref": "StoreDistribution"}
    assert outputs["StoreBucketName"]["Value"] == {"Ref": "StoreBucket"}
    assert outputs["AuthDomainUrl"]["Value"] == {
        "Fn::Sub": "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com"
    }


def test_the_client_waits_for_the_distribution_and_nothing_the_distribution_needs_waits_for_the_client():
    # Given the template as CloudFormation receives it (samtranslator's output) and who refers to whom
    resources = translated()["Resources"]
    edges = {
        name: (references(res.get("Properties", {})) | set(_as_list(res.get("DependsOn", []))))
        & set(resources)
        for name, res in resources.items()
    }

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(edges[node])
        return False

    # Then the client's callback names the distribution, and the distribution never (even indirectly) the client
    assert "StoreDistribution" in edges["UserPoolClient"]
    assert not reaches("StoreDistribution", "UserPoolClient")
    # and the template as a whole has no cycle
    assert all(not reaches(dep, name) for name in edges for dep in edges[name])


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]
