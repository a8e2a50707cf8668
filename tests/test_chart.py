"""The Helm chart in helm/, rendered and linted by the real helm binary."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from releasegate.core.config import Project, load_environment, load_project
from releasegate.core.errors import BadInput
from releasegate.core.placement import Placement, Slots, Track
from releasegate.core.version import parse_tag
from releasegate.deploy import chart, render
from tests.emulators.stack import describe_with_chart

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "cd" * 32
KINDS = ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "ServiceAccount"]


@pytest.fixture
def project(tmp_path: Path, helm_on_path: Path) -> Project:
    for name in ("releasegate.yaml", "skaffold.yaml"):
        shutil.copy(ROOT / name, tmp_path)
    for name in ("k8s", "helm"):
        shutil.copytree(ROOT / name, tmp_path / name)
    for env in ("prod", "nonprod"):
        describe_with_chart(tmp_path, env)
    return load_project(tmp_path)


def rendered(project: Project, env: str = "prod", tag: str = "v1.4.2") -> dict[str, dict]:
    manifests = render.render(project, load_environment(project, env), parse_tag(tag), IMAGE)
    return {m.kind: m.obj for m in manifests}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} has no {old!r}"
    path.write_text(text.replace(old, new))


def helm(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "tools" / "bin" / "helm"), *args],
        cwd=project.root, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("env", ["prod", "nonprod"])
@pytest.mark.parametrize(
    "slots",
    [
        None,
        Slots("blue", None),
        Slots("green", "blue"),
        Track("stable", "gateway"),
        Track("canary", "replicas"),
    ],
    ids=["rolling", "first slot", "second slot", "stable track", "canary track"],
)
def test_helm_lint_strict_is_clean(project: Project, env: str, slots: Placement, tmp_path: Path) -> None:
    values = tmp_path / "release-values.json"
    values.write_text(chart.release_values(parse_tag("v1.4.2"), IMAGE, slots))
    linted = helm(
        project, "lint", "--strict", "helm", "--values", f"helm/values-{env}.yaml", "--values", str(values)
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 chart(s) failed" in linted.stdout
    assert "[WARNING]" not in linted.stdout and "[ERROR]" not in linted.stdout, linted.stdout


@pytest.mark.parametrize(
    ("env", "namespace", "replicas"), [("prod", "model-api-prod", 3), ("nonprod", "model-api-nonprod", 2)]
)
def test_chart_renders_every_kind_valid_against_the_kubernetes_schemas(
    project: Project, env: str, namespace: str, replicas: int
) -> None:
    objects = rendered(project, env)  # render validates each object against the 1.33 schemas
    assert sorted(objects) == KINDS
    assert {o["metadata"]["namespace"] for o in objects.values()} == {namespace}
    deployment = objects["Deployment"]
    # The HorizontalPodAutoscaler owns spec.replicas: an apply that set it would fight it.
    assert "replicas" not in deployment["spec"]
    assert deployment["metadata"]["annotations"]["releasegate.dev/initial-replicas"] == str(replicas)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == f"model-api-{env}"


def test_a_chart_object_failing_the_kubernetes_schema_names_the_field(project: Project) -> None:
    edit(
        project.root / "helm" / "templates" / "service.yaml",
        "type: ClusterIP",
        "type: ClusterIP\n  clusterIPz: None",
    )
    with pytest.raises(BadInput, match=r"service.yaml: .*clusterIPz"):
        rendered(project)


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("replicaCount: three", "got string, want integer"),
        ("replicas: 3", "additional properties 'replicas'"),
    ],
)
def test_values_schema_rejects_a_wrong_type_and_an_unknown_key(
    project: Project, override: str, complaint: str
) -> None:
    edit(project.root / "helm" / "values-prod.yaml", "env:\n", f"{override}\nenv:\n")
    with pytest.raises(BadInput, match=complaint) as raised:
        rendered(project)
    assert raised.value.exit_code == 2
    assert "helm template helm" in raised.value.cause


def test_values_schema_requires_the_pinned_image(project: Project) -> None:
    unpinned = project.root / "unpinned.yaml"
    unpinned.write_text("image: model-api:latest\nreleaseTag: v1.4.2\n")
    done = helm(
        project, "template", "x", "helm", "--values", "helm/values-prod.yaml", "--values", str(unpinned)
    )
    assert done.returncode != 0
    assert "/image" in done.stderr and "does not match pattern" in done.stderr, done.stderr


def test_hostile_values_stay_one_string(project: Project) -> None:
    hostile = "x\nkind: Secret\n---\n{{ .Release.Name }}"
    edit(project.root / "helm" / "values-prod.yaml", "LOG_LEVEL: info", f"LOG_LEVEL: {json.dumps(hostile)}")
    container = rendered(project)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in container["env"]}["LOG_LEVEL"] == hostile


def test_same_inputs_give_byte_identical_files(project: Project) -> None:
    env = load_environment(project, "nonprod")
    first = render.render(project, env, parse_tag("v1.4.2"), IMAGE)
    second = render.render(project, env, parse_tag("v1.4.2"), IMAGE)
    assert [(m.filename, m.text) for m in first] == [(m.filename, m.text) for m in second]
    assert sorted(m.filename for m in first) == [f"{kind.lower()}.yaml" for kind in KINDS]


def test_build_metadata_becomes_a_valid_label(project: Project) -> None:
    labels = rendered(project, tag="v1.4.2+build.7")["Deployment"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "v1.4.2_build.7"


def test_write_for_deploy_adds_the_release_values_skaffold_reads(project: Project) -> None:
    env = load_environment(project, "prod")
    tag = parse_tag("v1.4.2")
    paths = render.write_for_deploy(project, env, tag, IMAGE, render.render(project, env, tag, IMAGE))
    values = project.build_dir("prod") / "release-values.json"
    assert values in paths
    assert json.loads(values.read_text()) == {"image": IMAGE, "releaseTag": "v1.4.2"}
    profile = yaml.safe_load((project.root / "skaffold.yaml").read_text())["profiles"]
    chart_profile = next(p for p in profile if p["name"] == "prod-chart")
    assert (
        chart_profile["manifests"]["helm"]["releases"][0]["valuesFiles"][-1]
        == "build/prod/release-values.json"
    )


def test_release_values_must_be_the_last_values_file(project: Project) -> None:
    edit(
        project.skaffold_file,
        "- build/prod/release-values.json",
        "- build/prod/release-values.json\n              - helm/values.yaml",
    )
    with pytest.raises(BadInput, match=r"valuesFiles must end with build/prod/release-values\.json"):
        rendered(project)


SET_VALUES = "chartPath: helm\n            setValues: {replicaCount: 9}\n"


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("chartPath: helm\n", SET_VALUES, "does not reproduce setValues"),
        ("namespace: model-api-prod\n", "namespace: default\n", "namespace must be model-api-prod"),
        ("            chartPath: helm\n", "", "the release needs a name and a chartPath"),
    ],
)
def test_release_settings_releasegate_would_not_reproduce_are_refused(
    project: Project, old: str, new: str, complaint: str
) -> None:
    edit(project.skaffold_file, old, new)
    with pytest.raises(BadInput, match=complaint):
        rendered(project)


def test_renderer_and_skaffold_profile_must_agree(project: Project) -> None:
    edit(project.environments_dir / "prod.yaml", "renderer: chart", "renderer: templates")
    with pytest.raises(
        BadInput, match="uses renderer templates, but skaffold profile prod-chart renders helm"
    ):
        rendered(project)
    edit(project.environments_dir / "prod.yaml", "renderer: templates", "renderer: chart")
    edit(project.environments_dir / "prod.yaml", "skaffold_profile: prod-chart", "skaffold_profile: prod")
    with pytest.raises(BadInput, match="uses renderer chart, but skaffold profile prod renders rawYaml"):
        rendered(project)


def test_an_unknown_renderer_is_bad_input(project: Project) -> None:
    edit(project.environments_dir / "prod.yaml", "renderer: chart", "renderer: kustomize")
    with pytest.raises(BadInput, match="renderer must be templates or chart"):
        load_environment(project, "prod")


def test_split_documents_names_each_object_after_its_template() -> None:
    output = (
        "---\n# Source: model-api/templates/service.yaml\nkind: Service\n"
        "---\n# Source: model-api/templates/extra.yaml\nkind: ConfigMap\n"
        "---\n# Source: model-api/templates/extra.yaml\nkind: Secret\n"
        "---\n# Source: model-api/templates/empty.yaml\n"
    )
    documents = chart.split_documents(output)
    assert [name for name, _ in documents] == ["service.yaml", "extra.yaml", "extra-2.yaml"]
    assert yaml.safe_load(documents[2][1]) == {"kind": "Secret"}


def test_missing_helm_is_refused_with_the_fix(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(project.root))  # no helm here
    with pytest.raises(Exception, match="helm not found on PATH") as raised:
        rendered(project)
    assert getattr(raised.value, "exit_code", None) == 3


def test_without_autoscaling_the_chart_sets_replicas_and_renders_no_autoscaler(project: Project) -> None:
    block = "autoscaling:\n  minReplicas: 3\n  maxReplicas: 12\n  targetCPUUtilizationPercentage: 70\n"
    edit(project.root / "helm" / "values-prod.yaml", block, "autoscaling: null  # helm drops the default\n")
    objects = rendered(project)
    assert "HorizontalPodAutoscaler" not in objects
    assert objects["Deployment"]["spec"]["replicas"] == 3


def test_the_schema_refuses_a_slot_that_is_not_blue_or_green(project: Project, tmp_path: Path) -> None:
    values = tmp_path / "release-values.json"
    text = chart.release_values(parse_tag("v1.4.2"), IMAGE, Slots("blue", None)).replace('"blue"', '"red"')
    values.write_text(text)
    linted = helm(
        project, "lint", "--strict", "helm", "--values", "helm/values-prod.yaml", "--values", str(values)
    )
    assert linted.returncode != 0
    assert "at '/blueGreen/slot': value must be one of 'blue', 'green'" in linted.stdout


def test_the_schema_refuses_a_track_that_is_not_stable_or_canary(project: Project, tmp_path: Path) -> None:
    values = tmp_path / "release-values.json"
    text = chart.release_values(parse_tag("v1.4.2"), IMAGE, Track("canary", "istio"))
    values.write_text(text.replace('"track": "canary"', '"track": "baseline"'))
    linted = helm(
        project, "lint", "--strict", "helm", "--values", "helm/values-prod.yaml", "--values", str(values)
    )
    assert linted.returncode != 0
    assert "at '/canary/track': value must be one of 'stable', 'canary'" in linted.stdout
