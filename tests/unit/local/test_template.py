"""clickstream_local.template: the stack's template is found from a path, the environment or the folders above."""

from __future__ import annotations

import pytest

from clickstream_local import template
from tests.conftest import REPO_ROOT


def test_the_template_is_found_upward_from_a_folder_of_the_repository(monkeypatch):
    monkeypatch.delenv(template.TEMPLATE_ENV, raising=False)
    assert template.find_template(REPO_ROOT / "tests" / "unit") == REPO_ROOT / "template.yaml"
    assert template.asl_path().is_file() and (template.functions_dir() / "ingest" / "app.py").is_file()


def test_the_environment_names_another_template(monkeypatch, tmp_path):
    other = tmp_path / "stack" / "template.yaml"
    other.parent.mkdir()
    other.write_text("Resources: {}\n")
    monkeypatch.setenv(template.TEMPLATE_ENV, str(other))
    assert template.find_template(REPO_ROOT) == other
    assert template.load_template() == {"Resources": {}}
    monkeypatch.setenv(template.TEMPLATE_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(template.TemplateNotFound, match="no such file"):
        template.find_template()


def test_outside_a_checkout_the_package_folder_is_searched_then_the_error_names_the_variable(
    monkeypatch, tmp_path
):
    monkeypatch.delenv(template.TEMPLATE_ENV, raising=False)
    # From an unrelated folder the editable install's checkout is still found
    assert template.find_template(tmp_path) == REPO_ROOT / "template.yaml"
    # And when the package does not sit in a checkout either, the error says how to name the template
    monkeypatch.setattr(
        template, "__file__", str(tmp_path / "site-packages" / "clickstream_local" / "template.py")
    )
    with pytest.raises(template.TemplateNotFound, match=template.TEMPLATE_ENV):
        template.find_template(tmp_path)
