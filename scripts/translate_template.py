"""Translate the SAM template into plain CloudFormation, offline, so cfn-lint checks the resources SAM generates.

``sam validate --lint`` lints the template before the transform, where Refs inside ``AWS::Serverless::*``
resources go unchecked. This script runs the transform itself (``samtranslator``) with no AWS access:

* local artifact paths (``CodeUri``, ``ContentUri``) become placeholder S3 locations, as ``sam package`` would
  make them, after checking that each path exists;
* the state machine's ``DefinitionUri`` is inlined as ``Definition``, so the ASL is linted with the stack;
* managed policies named by short name resolve through a local map instead of ``iam:ListPolicies``;
* checkov skips (``Metadata.checkov``) of an ``AWS::Serverless::Api`` are carried to the stage SAM derives from it
  (SAM passes ``Metadata`` to the REST API only, while settings such as caching belong to the stage).

``--default K=V`` also writes V as parameter K's default in the output: checkov evaluates the template's
conditions with the defaults, so a run with the optional parts switched on (``CreateWarehouse=true`` …) checks them.

Usage: ``python scripts/translate_template.py template.yaml OUT.json [--region us-east-1] [--param K=V ...]
[--default K=V ...]``
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER_BUCKET = "local-artifacts"

# AWS managed policies the template (or SAM on its behalf) may name by short name.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in (
        ("AWSLambdaBasicExecutionRole", "service-role/"),
        ("AWSLambdaVPCAccessExecutionRole", "service-role/"),
        ("AWSLambdaSQSQueueExecutionRole", "service-role/"),
        ("AWSXrayWriteOnlyAccess", ""),
        ("AWSXRayDaemonWriteAccess", ""),
        ("AmazonAPIGatewayPushToCloudWatchLogs", "service-role/"),
        ("CloudWatchLambdaInsightsExecutionRolePolicy", ""),
    )
}


class LocalManagedPolicyLoader:
    """Stands in for samtranslator's IAM-backed loader: same ``load()``, no network."""

    def __init__(self, policies: dict[str, str] | None = None) -> None:
        self._policies = dict(MANAGED_POLICIES if policies is None else policies)

    def load(self) -> dict[str, str]:
        return dict(self._policies)


def load_sam_template(path: Path) -> dict[str, Any]:
    """Parse a SAM template with CloudFormation short-form tags (``!Ref``, ``!Sub`` …) as SAM itself does."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text(encoding="utf-8"))


def localize_artifacts(template: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """A copy of ``template`` whose local artifact paths are replaced as described in the module docstring.

    Raises ``FileNotFoundError`` naming the resource when a local path does not exist.
    """
    out = copy.deepcopy(template)
    for logical_id, resource in out.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = _placeholder(logical_id, base_dir, props["CodeUri"])
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = _placeholder(logical_id, base_dir, props["ContentUri"])
        elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            uri = props.pop("DefinitionUri")
            if uri.startswith("s3://"):
                props["DefinitionUri"] = uri
            else:
                path = base_dir / uri
                if not path.is_file():
                    raise FileNotFoundError(f"{logical_id}: DefinitionUri {uri} does not exist")
                props["Definition"] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _placeholder(logical_id: str, base_dir: Path, uri: str) -> str:
    if uri.startswith("s3://"):
        return uri
    if not (base_dir / uri).exists():
        raise FileNotFoundError(f"{logical_id}: {uri} does not exist")
    return f"s3://{PLACEHOLDER_BUCKET}/{uri.strip('/')}.zip"


def translate(
    template: dict[str, Any], parameter_values: dict[str, Any] | None = None, region: str = "us-east-1"
) -> dict[str, Any]:
    """CloudFormation (a dict) for a SAM template whose artifacts are already localized."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.transform import transform

    # samtranslator asks boto3 for the region to pick the partition; answer without any AWS configuration.
    ArnGenerator.BOTO_SESSION_REGION_NAME = region
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    try:
        return transform(copy.deepcopy(template), dict(parameter_values or {}), LocalManagedPolicyLoader())
    except InvalidDocumentException as exc:
        messages = "; ".join(str(cause) for cause in exc.causes)
        raise SystemExit(f"SAM transform failed: {messages}") from exc


# SAM resource type -> the derived resource types that take its checkov skips (SAM does not copy Metadata to them).
CHECKOV_SKIPS_CARRIED_TO = {"AWS::Serverless::Api": ("AWS::ApiGateway::Stage",)}


def carry_checkov_skips(sam: dict[str, Any], cfn: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``cfn`` where the derived resources named in ``CHECKOV_SKIPS_CARRIED_TO`` (logical ids that start
    with their SAM resource's id) have that resource's ``Metadata.checkov``."""
    out = copy.deepcopy(cfn)
    for logical_id, resource in sam.get("Resources", {}).items():
        skips = (resource.get("Metadata") or {}).get("checkov")
        kinds = CHECKOV_SKIPS_CARRIED_TO.get(resource.get("Type", ""))
        if not skips or not kinds:
            continue
        for derived_id, derived in out["Resources"].items():
            if derived_id != logical_id and derived_id.startswith(logical_id) and derived["Type"] in kinds:
                derived.setdefault("Metadata", {})["checkov"] = copy.deepcopy(skips)
    return out


def with_defaults(cfn: dict[str, Any], defaults: dict[str, str]) -> dict[str, Any]:
    """A copy of ``cfn`` whose named parameters default to the given values (an unknown name is an error)."""
    out = copy.deepcopy(cfn)
    parameters = out.get("Parameters", {})
    unknown = sorted(set(defaults) - set(parameters))
    if unknown:
        raise SystemExit(f"not parameters of the template: {', '.join(unknown)}")
    for name, value in defaults.items():
        parameters[name]["Default"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--default", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    # samtranslator logs a warning per feature toggle it cannot find in its (AWS-hosted) configuration.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)

    params = dict(p.split("=", 1) for p in args.param)
    sam = load_sam_template(args.template)
    cfn = translate(localize_artifacts(sam, args.template.resolve().parent), params, args.region)
    cfn = with_defaults(carry_checkov_skips(sam, cfn), dict(d.split("=", 1) for d in args.default))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(cfn, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    n = len(cfn.get("Resources", {}))
    print(f"translated {args.template} -> {args.output} ({n} CloudFormation resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
