"""The skaffold stand-in holds the project's skaffold.yaml to Skaffold's official schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import reference
from tests.emulators import skaffold_standin

ROOT = Path(__file__).resolve().parents[1]


def test_project_skaffold_yaml_is_valid_against_the_official_schema() -> None:
    schema = json.loads(reference("skaffold", "v4beta14.json").read_text())
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert config["apiVersion"] == "skaffold/v4beta14"
    jsonschema.Draft7Validator(schema).validate(config)
    assert {p["name"] for p in config["profiles"]} == {"prod", "nonprod", "prod-chart", "nonprod-chart"}
    assert "manifests" not in config  # a profile's manifests would be merged into a top-level section


def test_standin_rejects_an_unknown_key(tmp_path: Path) -> None:
    reference("skaffold", "v4beta14.json")
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    config["deploy"]["kubectl"]["flagz"] = ["--oops"]
    path = tmp_path / "skaffold.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="flagz"):
        skaffold_standin.load_config(path, ["prod"])


def test_standin_rejects_another_api_version_and_unknown_profile(tmp_path: Path) -> None:
    path = tmp_path / "skaffold.yaml"
    path.write_text((ROOT / "skaffold.yaml").read_text().replace("v4beta14", "v2beta29"))
    with pytest.raises(ValueError, match="apiVersion"):
        skaffold_standin.load_config(path, [])
    with pytest.raises(ValueError, match='couldn\'t find profile "staging"'):
        skaffold_standin.load_config(ROOT / "skaffold.yaml", ["staging"])


def test_profile_selects_the_environment_build_folder() -> None:
    config = skaffold_standin.load_config(ROOT / "skaffold.yaml", ["prod"])
    assert config["manifests"]["rawYaml"] == ["build/prod/*.yaml"]
