"""The stack's own files, read so the laptop stack matches the deployed one: ``template.yaml`` (CloudFormation
short-form tags included), the state machine's ASL and the handlers under ``functions/``.

They belong to the repository, not to the installed package, so they are found, in this order: the template named
by ``CLICKSTREAM_TEMPLATE`` (a path), the first ``template.yaml`` upward from the current folder, the first one
upward from this package's own folder (an editable install of a checkout). The ASL and the handlers are beside it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ENV = "CLICKSTREAM_TEMPLATE"
TEMPLATE_NAME = "template.yaml"


class TemplateNotFound(FileNotFoundError):
    """No ``template.yaml`` where the laptop stack looks for one."""


def find_template(start: Path | None = None) -> Path:
    """The stack's template (see the module docstring); ``start`` replaces the current folder."""
    named = os.environ.get(TEMPLATE_ENV)
    if named:
        path = Path(named).expanduser().resolve()
        if not path.is_file():
            raise TemplateNotFound(f"{TEMPLATE_ENV}={named}: no such file")
        return path
    for origin in (Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent):
        for folder in (origin, *origin.parents):
            if (folder / TEMPLATE_NAME).is_file():
                return folder / TEMPLATE_NAME
    raise TemplateNotFound(
        f"no {TEMPLATE_NAME} upward from {Path(start or Path.cwd()).resolve()}: run from the repository, "
        f"or set {TEMPLATE_ENV} to the stack's template"
    )


def repo_root() -> Path:
    """The folder of the stack's template: the repository."""
    return find_template().parent


def asl_path() -> Path:
    """The pipeline's state machine definition beside the template."""
    return repo_root() / "statemachine" / "pipeline.asl.json"


def functions_dir() -> Path:
    """The Lambda handlers' folders beside the template."""
    return repo_root() / "functions"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template as plain data (``!Ref x`` becomes ``{"Ref": "x"}``); the stack's own unless ``path``."""
    return _load(path or find_template())


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # a SafeLoader subclass
    return data


def resource_properties(logical_id: str, path: Path | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = load_template(path)["Resources"][logical_id]["Properties"]
    return properties
