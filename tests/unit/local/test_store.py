"""The built store as ``clickstream serve`` hands it out: files, caching, the SPA fallback, no way out of the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream_local.store import ASSET_CACHE, PAGE_CACHE, StoreFiles, local_config


@pytest.fixture
def store(tmp_path: Path) -> StoreFiles:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>store</title>")
    (root / "assets" / "app-ABC.js").write_text("console.log(1)")
    (root / "assets" / "app-ABC.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("outside")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    return StoreFiles(root)


def test_assets_are_immutable_and_the_page_is_revalidated(store):
    js = store.resolve("/assets/app-ABC.js")
    assert js.body == b"console.log(1)" and js.cache_control == ASSET_CACHE
    assert js.content_type.startswith("text/javascript")
    assert store.resolve("/assets/app-ABC.css").content_type.startswith("text/css")
    page = store.resolve("/")
    assert page.body.startswith(b"<!doctype html>") and page.cache_control == PAGE_CACHE
    assert page.content_type == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    ["/c/laptops", "/p/LAP-0001/some-slug", "/checkout/confirmation", "/auth/callback", "/assets/gone.js"],
)
def test_the_stores_routes_answer_index_html(store, path):
    assert store.resolve(path).body == (store.root / "index.html").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/link",
        "/assets/../../secret.txt",
        "/%ff%fe",
    ],
)
def test_nothing_outside_the_folder_is_ever_read(store, path):
    assert store.resolve(path).body == (store.root / "index.html").read_bytes()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=600))
def test_any_path_answers_a_file_of_the_store(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("dist")
    (root / "index.html").write_text("index")
    found = StoreFiles(root).resolve("/" + text)
    assert found.body == b"index"


def test_a_store_that_is_not_built_says_so(tmp_path):
    assert not StoreFiles(tmp_path / "nowhere").built


def test_the_local_config_is_same_origin():
    config = local_config(
        client_id="c",
        region="us-east-1",
        identity_pool_id="us-east-1:p",
        identity_endpoint="/id",
        require_consent=True,
    )
    assert config["apiBase"] == "" and config["authDomain"] == "" and "redirectUri" not in config
    assert config["requireConsent"] is True and config["appId"] == "shop-web"
