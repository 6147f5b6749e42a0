"""``clickstream deploy-web --stack-name``: the built store goes to the stack's bucket with the ``/config.json`` its
outputs make (a CloudFormation stack, an S3 bucket and a CloudFront distribution in moto), each file with its
content type and cache header, and ``index.html`` and ``config.json`` are invalidated."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from clickstream_cli.commands import deploy_web
from clickstream_cli.main import main
from tests.conftest import REPO_ROOT

REGION = "eu-west-1"
STACK = "shop-clickstream"
BUCKET = "clickstream-dev-store-123456789012-eu-west-1"
JS = b"import{h as e}from'preact';console.log('store')"
CSS = b"body{margin:0}"
INDEX = b'<!doctype html><link rel="stylesheet" href="/assets/app-4f5e6d.css"><script src="/assets/app-1a2b3c.js">'


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A built store as ``make web`` leaves it (with its config.example.json), plus a local config.json: neither
    is deployed."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app-1a2b3c.js").write_bytes(JS)
    (root / "assets" / "app-4f5e6d.css").write_bytes(CSS)
    (root / "assets" / "app-1a2b3c.js.map").write_bytes(b"{}")
    (root / "config.json").write_text('{"appId": "local"}')
    (root / "config.example.json").write_text('{"appId": "shop-web"}')
    return root


@pytest.fixture
def stack(monkeypatch) -> Any:
    """A stack in moto whose outputs and parameters are the template's, for a store on CloudFront."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "store",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "store",
                            "DomainName": f"{BUCKET}.s3.{REGION}.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "store",
                    "ViewerProtocolPolicy": "redirect-to-https",
                },
            }
        )["Distribution"]
        outputs = {
            "ApiUrl": f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/dev",
            "StoreUrl": f"https://{distribution['DomainName']}",
            "StoreBucketName": BUCKET,
            "StoreDistributionId": distribution["Id"],
            "AuthDomainUrl": f"https://example-shop.auth.{REGION}.amazoncognito.com",
            "UserPoolClientId": "4example0client0id0abcdefgh",
            "GuestIdentityPoolId": f"{REGION}:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        }
        _create_stack(STACK, outputs, {"StoreCurrency": "EUR", "AllowedOrigin": "*"})
        yield {"s3": s3, "cloudfront": cloudfront, "outputs": outputs, "distribution": distribution}


def _create_stack(name: str, outputs: dict[str, str], parameters: dict[str, str]) -> None:
    template = {
        "Parameters": {key: {"Type": "String"} for key in parameters},
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )


def _object(s3: Any, key: str) -> dict[str, Any]:
    answer = s3.get_object(Bucket=BUCKET, Key=key)
    return {
        "body": answer["Body"].read(),
        "type": answer["ContentType"],
        "cache": answer.get("CacheControl"),
    }


def test_deploy_web_uploads_the_store_with_the_stacks_config_and_invalidates_it(stack, dist, capsys):
    # When the operator deploys the built store to the stack
    code = main(["deploy-web", "--stack-name", STACK, "--region", REGION, "--dist", str(dist)])
    # Then config.json is exactly what the stack's outputs say (web/README.md's table)
    assert code == 0, capsys.readouterr().out
    s3, outputs = stack["s3"], stack["outputs"]
    store = outputs["StoreUrl"]
    config = _object(s3, "config.json")
    assert json.loads(config["body"]) == {
        "appId": "shop-web",
        "apiBase": f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/dev",
        "region": REGION,
        "identityPoolId": outputs["GuestIdentityPoolId"],
        "identityEndpoint": f"https://cognito-identity.{REGION}.amazonaws.com/",
        "authDomain": f"https://example-shop.auth.{REGION}.amazoncognito.com",
        "clientId": "4example0client0id0abcdefgh",
        "redirectUri": f"{store}/auth/callback",
        "logoutUri": f"{store}/",
        "requireConsent": True,
        "currency": "EUR",
    }
    assert (config["type"], config["cache"]) == ("application/json", "no-cache")
    # and every file of the build is there with its type and cache header (the local config.json replaced)
    assert _object(s3, "index.html") == {
        "body": INDEX,
        "type": "text/html; charset=utf-8",
        "cache": "no-cache",
    }
    immutable = "public, max-age=31536000, immutable"
    assert _object(s3, "assets/app-1a2b3c.js") == {
        "body": JS,
        "type": "text/javascript; charset=utf-8",
        "cache": immutable,
    }
    assert _object(s3, "assets/app-4f5e6d.css") == {
        "body": CSS,
        "type": "text/css; charset=utf-8",
        "cache": immutable,
    }
    assert _object(s3, "assets/app-1a2b3c.js.map")["type"] == "application/json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {
        "index.html",
        "config.json",
        "assets/app-1a2b3c.js",
        "assets/app-4f5e6d.css",
        "assets/app-1a2b3c.js.map",
    }
    # and CloudFront was told to drop its copies of index.html and config.json
    cloudfront, distribution_id = stack["cloudfront"], outputs["StoreDistributionId"]
    (invalidation,) = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"][
        "Items"
    ]
    batch = cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation["Id"])["Invalidation"]
    assert sorted(batch["InvalidationBatch"]["Paths"]["Items"]) == ["/config.json", "/index.html"]
    assert invalidation["Id"] in capsys.readouterr().out


def test_a_redeploy_keeps_the_previous_builds_assets(stack, dist):
    assert main(["deploy-web", "--stack-name", STACK, "--region", REGION, "--dist", str(dist)]) == 0
    (dist / "assets" / "app-1a2b3c.js").rename(dist / "assets" / "app-9f8e7d.js")
    assert main(["deploy-web", "--stack-name", STACK, "--region", REGION, "--dist", str(dist)]) == 0
    keys = {o["Key"] for o in stack["s3"].list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {
        "assets/app-1a2b3c.js",
        "assets/app-9f8e7d.js",
    } <= keys  # a shopper mid-visit still loads the old one
    items = stack["cloudfront"].list_invalidations(DistributionId=stack["outputs"]["StoreDistributionId"])
    assert items["InvalidationList"]["Quantity"] == 2


def test_index_html_goes_last_so_it_never_names_a_missing_asset(dist):
    uploads = deploy_web.planned_uploads(dist, {"appId": "shop-web"})
    keys = [u.key for u in uploads]
    assert keys[-2:] == ["config.json", "index.html"]
    assert all(k.startswith("assets/") for k in keys[:-2])


def test_same_origin_api_base_and_other_options(stack, dist, capsys):
    code = main(
        [
            "deploy-web",
            "--stack-name",
            STACK,
            "--region",
            REGION,
            "--dist",
            str(dist),
            "--api-base",
            "",
            "--no-require-consent",
            "--app-id",
            "shop-eu",
        ]
    )
    assert code == 0, capsys.readouterr().out
    config = json.loads(_object(stack["s3"], "config.json")["body"])
    assert (config["apiBase"], config["requireConsent"], config["appId"]) == ("", False, "shop-eu")


def test_a_dry_run_changes_nothing(stack, dist, capsys):
    assert (
        main(["deploy-web", "--stack-name", STACK, "--region", REGION, "--dist", str(dist), "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    assert '"clientId": "4example0client0id0abcdefgh"' in out and "assets/app-1a2b3c.js" in out
    assert "Contents" not in stack["s3"].list_objects_v2(Bucket=BUCKET)
    assert (
        stack["cloudfront"].list_invalidations(DistributionId=stack["outputs"]["StoreDistributionId"])[
            "InvalidationList"
        ]["Quantity"]
        == 0
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-outputs", "has no outputs StoreUrl, StoreBucketName, StoreDistributionId, AuthDomainUrl"),
        ("no-build", "holds no built store"),
        ("foreign-origins", "does not allow the store's origin"),
        ("no-stack", "does not exist"),
    ],
)
def test_what_cannot_be_deployed_is_refused_with_a_reason_and_nothing_uploaded(
    stack, dist, tmp_path, capsys, change, message
):
    name = STACK
    if change == "no-outputs":  # a stack deployed with StoreHosting=disabled
        name = "no-store"
        outputs = {
            k: v
            for k, v in stack["outputs"].items()
            if k in {"ApiUrl", "UserPoolClientId", "GuestIdentityPoolId"}
        }
        _create_stack(name, outputs, {"StoreCurrency": "USD"})
    elif change == "no-build":
        dist = tmp_path / "empty"
        dist.mkdir()
    elif change == "foreign-origins":  # the API would refuse the store's origin (CORS)
        name = "prod-shop"
        _create_stack(
            name, stack["outputs"], {"StoreCurrency": "USD", "AllowedOrigin": "https://shop.example.com"}
        )
    elif change == "no-stack":
        name = "nobody"
    code = main(["deploy-web", "--stack-name", name, "--region", REGION, "--dist", str(dist)])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2 and message in out, out
    assert "Contents" not in stack["s3"].list_objects_v2(Bucket=BUCKET)


def test_the_allowed_origin_may_name_the_store_by_pattern(stack):
    outputs = {**stack["outputs"], "StoreUrl": "https://shop.example.com"}
    config = deploy_web.store_config(
        {
            "outputs": outputs,
            "parameters": {"AllowedOrigin": "https://*.example.com", "StoreCurrency": "USD"},
        },
        REGION,
    )
    assert config["redirectUri"] == "https://shop.example.com/auth/callback"
    with pytest.raises(deploy_web.DeployError, match="--app-id"):
        deploy_web.store_config({"outputs": outputs, "parameters": {}}, REGION, app_id="")


@settings(max_examples=60, deadline=None)
@given(
    app_id=st.text(max_size=80) | st.sampled_from(["shop-web", "shop\u200bweb", "x" * 64, "x" * 65, "ünï 店"])
)
def test_any_app_id_is_written_as_given_or_refused_with_a_reason(app_id):
    stack = {
        "outputs": {
            "ApiUrl": "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/dev",
            "StoreUrl": "https://d111111abcdef8.cloudfront.net",
            "AuthDomainUrl": "https://example-shop.auth.eu-west-1.amazoncognito.com",
            "UserPoolClientId": "4example0client0id0abcdefgh",
            "GuestIdentityPoolId": "eu-west-1:0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        },
        "parameters": {"AllowedOrigin": "*"},
    }
    try:
        config = deploy_web.store_config(stack, REGION, app_id=app_id)
    except deploy_web.DeployError as exc:
        assert "--app-id" in str(exc)
        assert not _pipeline_accepts(app_id)
        return
    # what is accepted is an app_id the ingest API takes, and it survives the trip through config.json
    assert _pipeline_accepts(app_id)
    upload = deploy_web.planned_config(config)
    assert json.loads(upload.body.decode("utf-8"))["appId"] == app_id


def _pipeline_accepts(app_id: str) -> bool:
    """The ingest API's request model takes ``app_id`` (its ``AppId`` type), and UTF-8 can carry it."""
    from pydantic import TypeAdapter, ValidationError

    from clickstream.ingest.models import AppId

    try:
        app_id.encode("utf-8")
        TypeAdapter(AppId).validate_python(app_id)
    except (UnicodeEncodeError, ValidationError):
        return False
    return True


@pytest.mark.skipif(
    not (REPO_ROOT / "web/store/dist/index.html").is_file(),
    reason="the store is not built (make web; make test does)",
)
def test_the_real_build_uploads_every_file_index_html_names_with_a_known_type():
    dist = REPO_ROOT / "web/store/dist"
    uploads = {u.key: u for u in deploy_web.planned_uploads(dist, {"appId": "shop-web"})}
    index = uploads["index.html"].body.decode("utf-8")
    named = set(re.findall(r'(?:src|href)="/(assets/[^"]+)"', index))
    assert named and named <= set(uploads)  # the page's script and stylesheet go up with it
    assert "config.example.json" not in uploads
    for key, item in uploads.items():
        assert item.content_type != "application/octet-stream", key
        assert item.cache_control == (
            "public, max-age=31536000, immutable" if key.startswith("assets/") else "no-cache"
        )
