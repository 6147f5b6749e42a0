"""What CloudFormation would make of ``template.yaml`` for given parameters, for the infrastructure tests.

A small evaluator of the intrinsic functions the template's Conditions, Rules and conditional properties use
(``Ref`` to a resource and ``GetAtt``/``Sub`` stay symbolic), the translated template (samtranslator, offline, as
``make lint`` runs it), and the deploy-time checks CloudFormation makes before it creates anything: each parameter's
``AllowedValues``/``AllowedPattern``/bounds and the ``Rules``.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from functools import lru_cache
from types import ModuleType
from typing import Any

from clickstream_local.template import load_template
from tests.conftest import REPO_ROOT

NO_VALUE = ("ref", "AWS::NoValue")


# The template's Lambda functions (the handlers of functions/), by logical id.
FUNCTIONS = (
    "IngestFunction",
    "ValidateFunction",
    "PlanFunction",
    "SessionizeFunction",
    "LoadFunction",
    "AggregateFunction",
    "CommitFunction",
)


def references(node: object) -> set[str]:
    """Logical ids (and parameters) a template fragment refers to through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


class GetAtt:
    """Equal to ``!GetAtt Name.Attr`` in either of its YAML forms (``Name.Attr`` or ``[Name, Attr]``)."""

    def __init__(self, name: str, attr: str) -> None:
        self.target = [name, attr]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or set(other) != {"Fn::GetAtt"}:
            return False
        value = other["Fn::GetAtt"]
        return (value.split(".", 1) if isinstance(value, str) else list(value)) == self.target

    def __repr__(self) -> str:
        return f"GetAtt({'.'.join(self.target)})"


def parameters(template: dict[str, Any], **given: Any) -> dict[str, Any]:
    """Every parameter's value: ``given`` or the default; ``CommaDelimitedList`` values as lists."""
    unknown = set(given) - set(template["Parameters"])
    assert not unknown, f"not parameters of the template: {sorted(unknown)}"
    values = {}
    for name, spec in template["Parameters"].items():
        value = given.get(name, spec.get("Default"))
        if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
            value = value.split(",") if value else [""]
        values[name] = value
    return values


def resolve(node: Any, template: dict[str, Any], params: dict[str, Any]) -> Any:
    """``node`` with its intrinsic functions evaluated; ``AWS::NoValue`` entries dropped from maps and lists."""
    if isinstance(node, list):
        out = [resolve(n, template, params) for n in node]
        return [v for v in out if v != NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return params.get(arg, ("ref", arg))
        if fn in ("Condition", "Fn::Condition"):  # the long form, and the short form as the loader reads it
            return condition(arg, template, params)
        if fn == "Fn::Not":
            return not resolve(arg[0], template, params)
        if fn == "Fn::And":
            return all(resolve(a, template, params) for a in arg)
        if fn == "Fn::Or":
            return any(resolve(a, template, params) for a in arg)
        if fn == "Fn::Contains":  # Rules only: a string in a list of strings
            items, value = (resolve(a, template, params) for a in arg)
            return value in items
        if fn == "Fn::Equals":
            left, right = (resolve(a, template, params) for a in arg)
            return str(left) == str(right) if not isinstance(left, list | tuple) else left == right
        if fn == "Fn::Join":
            parts = resolve(arg[1], template, params)
            if all(isinstance(p, str | int) for p in parts):
                return arg[0].join(str(p) for p in parts)
            return {"Fn::Join": [arg[0], parts]}
        if fn == "Fn::Select":
            index, items = resolve(arg[0], template, params), resolve(arg[1], template, params)
            if isinstance(items, list):
                return items[int(index)]
            return {"Fn::Select": [index, items]}
        if fn == "Fn::If":
            name, yes, no = arg
            return resolve(yes if condition(name, template, params) else no, template, params)
        if fn in ("Fn::Sub", "Fn::GetAtt", "Fn::GetAZs", "Fn::Cidr", "Fn::Split", "Fn::ImportValue"):
            return {fn: resolve(arg, template, params)}
        if fn.startswith("Fn::"):
            raise NotImplementedError(fn)
    out = {k: resolve(v, template, params) for k, v in node.items()}
    return {k: v for k, v in out.items() if v != NO_VALUE}


def condition(name: str, template: dict[str, Any], params: dict[str, Any]) -> bool:
    return bool(resolve(template["Conditions"][name], template, params))


def created(template: dict[str, Any], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates for ``params``, their properties resolved."""
    out = {}
    for name, res in template["Resources"].items():
        if "Condition" in res and not condition(res["Condition"], template, params):
            continue
        out[name] = {**res, "Properties": resolve(res.get("Properties", {}), template, params)}
    return out


def refusals(template: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Why CloudFormation would refuse to deploy with ``params`` (parameter constraints, then Rules); [] if not."""
    found = []
    for name, spec in template["Parameters"].items():
        value = params[name]
        values = value if isinstance(value, list) else [value]
        if "AllowedValues" in spec and any(
            str(v) not in {str(a) for a in spec["AllowedValues"]} for v in values
        ):
            found.append(f"{name}: not one of AllowedValues")
        if "AllowedPattern" in spec and any(not re.fullmatch(spec["AllowedPattern"], str(v)) for v in values):
            found.append(f"{name}: does not match AllowedPattern")
        if spec["Type"] == "Number":
            number = float(value)
            if ("MinValue" in spec and number < spec["MinValue"]) or (
                "MaxValue" in spec and number > spec["MaxValue"]
            ):
                found.append(f"{name}: out of bounds")
    for name, rule in template.get("Rules", {}).items():
        applies = resolve(rule.get("RuleCondition", True), template, params)
        if applies and not all(resolve(a["Assert"], template, params) for a in rule["Assertions"]):
            found.append(name)
    return found


def samconfig_parameters(env: str) -> dict[str, str]:
    """The ``parameter_overrides`` of ``samconfig.toml``'s ``[env.deploy.parameters]``."""
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
    return dict(item.split("=", 1) for item in shlex.split(overrides))


# ---------------------------------------------------------------------------------------------- translation
def translate_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "translate_template", REPO_ROOT / "scripts" / "translate_template.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=8)
def _translated(frozen_params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    script = translate_script()
    sam = load_template()
    cfn = script.translate(script.localize_artifacts(sam, REPO_ROOT), dict(frozen_params))
    return script.carry_checkov_skips(sam, cfn)  # as `make lint` writes it


def translated(**given: str) -> dict[str, Any]:
    """The template as samtranslator makes it plain CloudFormation (cached; do not mutate the result)."""
    return _translated(tuple(sorted(given.items())))
