"""Parity: the Jinja templates (with k8s/environments/<env>.yaml) and the Helm chart (with
helm/values-<env>.yaml) must describe the same service, object for object and field for field.

Both are rendered for real (Jinja2, and the helm binary) and compared whole after
normalising what legitimately differs: document order, the order of named list entries, and
helm's bookkeeping labels. A divergence is reported by object and field path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from releasegate.core import placement
from releasegate.core.config import Project, load_environment, load_project
from releasegate.core.version import parse_tag
from releasegate.deploy import render
from tests.emulators.stack import describe_with_chart

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "ef" * 32
# Labels that say which tool rendered the object, not what the object is.
BOOKKEEPING_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by"}


def copy_project(target: Path, chart: bool) -> Project:
    for name in ("releasegate.yaml", "skaffold.yaml"):
        shutil.copy(ROOT / name, target)
    for name in ("k8s", "helm"):
        shutil.copytree(ROOT / name, target / name)
    if chart:
        for env in ("prod", "nonprod"):
            describe_with_chart(target, env)
    return load_project(target)


@pytest.fixture
def projects(tmp_path: Path, helm_on_path: Path) -> tuple[Project, Project]:
    (tmp_path / "templates").mkdir()
    (tmp_path / "chart").mkdir()
    return copy_project(tmp_path / "templates", chart=False), copy_project(tmp_path / "chart", chart=True)


def objects(project: Project, env: str, slots: placement.Placement = None) -> dict[str, Any]:
    environment = load_environment(project, env)
    manifests = render.render(project, environment, parse_tag("v1.4.2"), IMAGE, slots)
    return {f"{m.kind}/{m.obj['metadata'].get('namespace')}/{m.name}": normalised(m.obj) for m in manifests}


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: normalised(item)
            for key, item in value.items()
            if not (isinstance(key, str) and key in BOOKKEEPING_LABELS)
        }
    if isinstance(value, list):
        items = [normalised(item) for item in value]
        if all(isinstance(item, dict) and "name" in item for item in items):
            return {f"[{item['name']}]": item for item in items}  # order of named entries is not meaning
        return items
    return value


def parity(projects: tuple[Project, Project], env: str, slots: placement.Placement = None) -> list[str]:
    """Each divergence as 'Kind/namespace/name: field.path: templates=... chart=...'."""
    templates, chart = objects(projects[0], env, slots), objects(projects[1], env, slots)
    found = []
    for key in sorted(templates.keys() | chart.keys()):
        if key not in chart or key not in templates:
            found.append(f"{key}: only in the {'templates' if key in templates else 'chart'}")
        else:
            found += [f"{key}: {field}" for field in differences(templates[key], chart[key])]
    return found


def differences(templates: Any, chart: Any, path: str = "") -> Iterator[str]:
    if isinstance(templates, dict) and isinstance(chart, dict):
        for key in sorted(templates.keys() | chart.keys(), key=str):
            where = f"{path}{key}" if key.startswith("[") or not path else f"{path}.{key}"
            if key not in chart:
                yield f"{where}: only in the templates ({templates[key]!r})"
            elif key not in templates:
                yield f"{where}: only in the chart ({chart[key]!r})"
            else:
                yield from differences(templates[key], chart[key], where)
    elif templates != chart:
        yield f"{path}: templates={templates!r} chart={chart!r}"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("env", ["prod", "nonprod"])
def test_templates_and_chart_describe_the_same_objects(projects: tuple[Project, Project], env: str) -> None:
    assert len(objects(projects[0], env)) == 5
    assert parity(projects, env) == []


# Blue/green: the first deploy (blue, nothing live: no <app> Service yet) and a later one
# (green, while <app> selects blue).
SLOT_CASES = {
    "first": (
        placement.Slots("blue", None),
        {"Deployment": "model-api-blue", "Service": "model-api-preview"},
    ),
    "second": (placement.Slots("green", "blue"), {"Deployment": "model-api-green", "Service": "model-api"}),
}


@pytest.mark.parametrize("env", ["prod", "nonprod"])
@pytest.mark.parametrize("case", sorted(SLOT_CASES))
def test_templates_and_chart_describe_the_same_slot_objects(
    projects: tuple[Project, Project], env: str, case: str
) -> None:
    slots, expected = SLOT_CASES[case]
    rendered = objects(projects[0], env, slots)
    namespace = f"model-api-{env}"
    for kind, name in expected.items():
        assert f"{kind}/{namespace}/{name}" in rendered
    deployment = rendered[f"Deployment/{namespace}/{slots.target and expected['Deployment']}"]
    assert deployment["spec"]["selector"]["matchLabels"]["releasegate.dev/slot"] == slots.target
    assert deployment["spec"]["template"]["metadata"]["labels"]["releasegate.dev/slot"] == slots.target
    assert (f"Service/{namespace}/model-api" in rendered) == (slots.live is not None)
    assert parity(projects, env, slots) == []


# Canary: the stable track (a first deploy, or a promotion) and the canary beside it.
TRACK_CASES = {
    "stable": ("model-api", {"model-api", "model-api-stable", "model-api-canary"}),
    "canary": ("model-api-canary", {"model-api", "model-api-stable", "model-api-canary"}),
}


@pytest.mark.parametrize("env", ["prod", "nonprod"])
@pytest.mark.parametrize("track", sorted(TRACK_CASES))
def test_templates_and_chart_describe_the_same_track_objects(
    projects: tuple[Project, Project], env: str, track: str
) -> None:
    workload, services = TRACK_CASES[track]
    rendered = objects(projects[0], env, placement.Track(track, "gateway"))
    namespace = f"model-api-{env}"
    names = {key.split("/")[-1] for key in rendered if key.startswith("Service/")}
    assert names == services
    deployments = [key for key in rendered if key.startswith("Deployment/")]
    assert deployments == [f"Deployment/{namespace}/{workload}"]  # the other track is never applied
    pods = rendered[deployments[0]]["spec"]["template"]["metadata"]["labels"]
    assert pods["releasegate.dev/track"] == track
    for name in ("stable", "canary"):
        selector = rendered[f"Service/{namespace}/model-api-{name}"]["spec"]["selector"]
        assert selector == {"app.kubernetes.io/name": "model-api", "releasegate.dev/track": name}
    autoscaler = f"HorizontalPodAutoscaler/{namespace}/{workload}"
    assert (autoscaler in rendered) == (track == "stable")  # never for a canary
    assert parity(projects, env, placement.Track(track, "gateway")) == []


def test_a_track_label_missing_in_the_chart_is_named(projects: tuple[Project, Project]) -> None:
    edit(projects[1].root / "helm" / "templates" / "_helpers.tpl",
         'releasegate.dev/track: "canary"\n', "")  # fmt: skip
    found = parity(projects, "prod", placement.Track("canary", "istio"))
    assert "Deployment/model-api-prod/model-api-canary: spec.selector.matchLabels.releasegate.dev/track: " \
        "only in the templates ('canary')" in found  # fmt: skip


def test_a_slot_label_missing_in_the_chart_is_named(projects: tuple[Project, Project]) -> None:
    edit(projects[1].root / "helm" / "templates" / "_helpers.tpl",
         "releasegate.dev/slot: {{ .Values.blueGreen.slot | toJson }}\n", "")  # fmt: skip
    found = parity(projects, "prod", placement.Slots("green", "blue"))
    assert "Deployment/model-api-prod/model-api-green: spec.selector.matchLabels.releasegate.dev/slot: " \
        "only in the templates ('green')" in found  # fmt: skip


def test_a_changed_probe_in_the_chart_is_named(projects: tuple[Project, Project]) -> None:
    deployment = projects[1].root / "helm" / "templates" / "deployment.yaml"
    edit(
        deployment,
        "periodSeconds: 5\n            failureThreshold: 3",
        "periodSeconds: 7\n            failureThreshold: 3",
    )
    assert parity(projects, "prod") == [
        "Deployment/model-api-prod/model-api: spec.template.spec.containers[model-api].readinessProbe"
        ".periodSeconds: templates=5 chart=7"
    ]


def test_a_changed_port_in_the_templates_is_named(projects: tuple[Project, Project]) -> None:
    service = projects[0].root / "k8s" / "templates" / "service.yaml.j2"
    edit(service, "targetPort: http", "targetPort: 8080")
    assert parity(projects, "nonprod") == [
        "Service/model-api-nonprod/model-api: spec.ports[http].targetPort: templates=8080 chart='http'"
    ]


def test_a_changed_resource_limit_in_the_chart_values_is_named(projects: tuple[Project, Project]) -> None:
    edit(
        projects[1].root / "helm" / "values-prod.yaml",
        'limits: {cpu: "2", memory: 4Gi}',
        'limits: {cpu: "2", memory: 8Gi}',
    )
    assert parity(projects, "prod") == [
        "Deployment/model-api-prod/model-api: spec.template.spec.containers[model-api].resources.limits"
        ".memory: templates='4Gi' chart='8Gi'"
    ]
    assert parity(projects, "nonprod") == []  # the other environment is untouched


def test_an_object_only_one_side_renders_is_named(projects: tuple[Project, Project]) -> None:
    (projects[1].root / "helm" / "templates" / "poddisruptionbudget.yaml").unlink()
    assert parity(projects, "prod") == ["PodDisruptionBudget/model-api-prod/model-api: only in the templates"]


def test_bookkeeping_labels_are_the_only_thing_normalised(projects: tuple[Project, Project]) -> None:
    chart_labels = objects(projects[1], "prod")["Deployment/model-api-prod/model-api"]["metadata"]["labels"]
    assert "helm.sh/chart" not in chart_labels
    assert chart_labels["app.kubernetes.io/instance"] == "model-api-prod"
    assert chart_labels["app.kubernetes.io/version"] == "v1.4.2"
