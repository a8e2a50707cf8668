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


def test_standin_refuses_surrogate_escapes_like_go_yaml() -> None:
    # go-yaml's scanner: "found invalid Unicode character escape code" (PyYAML would decode it).
    with pytest.raises(ValueError, match="line 2: found invalid Unicode character escape code"):
        skaffold_standin.load_documents('kind: ConfigMap\ndata: {"a": "\\ud83d\\ude80"}\n', "x.yaml")
    with pytest.raises(ValueError, match="invalid Unicode character escape code"):
        skaffold_standin.load_documents('a: "\\U00110000"\n', "x.yaml")
    # An escaped backslash before "u" is no escape, and \U beyond the BMP is fine.
    assert skaffold_standin.load_documents('a: "\\\\ud83d \\U0001F680"\n', "x.yaml") == [
        {"a": "\\ud83d \U0001f680"}
    ]


def _deployment() -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"name": "app", "labels": {"app": "x"}},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}},
        },
    }


def test_standin_stamps_a_fresh_run_id_on_every_run_into_pod_templates() -> None:
    first, second = _deployment(), _deployment()
    skaffold_standin.stamp_labels([first], skaffold_standin.run_labels([]))
    skaffold_standin.stamp_labels([second], skaffold_standin.run_labels([]))
    run_id = skaffold_standin.RUN_ID
    assert first["spec"]["template"]["metadata"]["labels"][run_id]
    assert first["metadata"]["labels"][run_id] == first["spec"]["template"]["metadata"]["labels"][run_id]
    assert first["spec"]["template"] != second["spec"]["template"]  # a new ReplicaSet each run
    assert run_id not in first["spec"]["selector"]["matchLabels"]


def test_standin_label_flag_fixes_the_run_id_and_keeps_existing_labels() -> None:
    document = _deployment()
    labels = skaffold_standin.run_labels(["skaffold.dev/run-id=releasegate-prod,app=other"])
    skaffold_standin.stamp_labels([document], labels)
    template_labels = document["spec"]["template"]["metadata"]["labels"]
    assert template_labels == {"app": "x", "skaffold.dev/run-id": "releasegate-prod"}


def test_standin_apply_keeps_a_live_field_neither_manifest_sets() -> None:
    live = {"metadata": {"name": "a", "uid": "1"}, "spec": {"replicas": 7, "paused": False}}
    last = {"metadata": {"name": "a"}, "spec": {"paused": False}}
    new = {"metadata": {"name": "a"}, "spec": {"minReadySeconds": 5}}
    merged = skaffold_standin.three_way_merge(live, last, new)
    # replicas: never applied, so the live (autoscaled) value stays; paused: applied before, now dropped.
    assert merged == {"metadata": {"name": "a", "uid": "1"}, "spec": {"replicas": 7, "minReadySeconds": 5}}


def test_standin_apply_retries_a_conflict_with_a_fresh_read_as_kubectl_does() -> None:
    """A controller writing the Deployment's status between kubectl's read and its write is a
    409 Conflict; kubectl's patcher reads again and retries (up to 5 times), so a deploy or a
    restore does not fail on it."""
    from tests.emulators.kube import KubeEmulator

    cluster = KubeEmulator().start()
    try:
        cluster.namespaces.add("ns")
        client = skaffold_standin.Cluster(cluster.url, cluster.token)
        metadata = {"name": "api", "namespace": "ns"}
        spec = {"selector": {"a": "1"}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}
        assert client.apply(json.loads(json.dumps(service)), "ns") == "service/api created"
        service["spec"]["selector"] = {"a": "2"}
        cluster.fail_next(409, "PUT", "/services/api", times=2)
        assert client.apply(json.loads(json.dumps(service)), "ns") == "service/api configured"
        assert cluster.get("Service", "ns", "api")["spec"]["selector"] == {"a": "2"}
        cluster.fail_next(409, "PUT", "/services/api", times=skaffold_standin.MAX_PATCH_RETRY)
        with pytest.raises(Exception, match="409"):
            client.apply(json.loads(json.dumps(service)), "ns")
    finally:
        cluster.stop()
