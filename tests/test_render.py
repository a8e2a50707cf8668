from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from releasegate.core.config import load_environment, load_project
from releasegate.core.errors import BadInput
from releasegate.core.version import parse_tag
from releasegate.deploy import render

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "ab" * 32


@pytest.fixture
def project(tmp_path: Path):
    shutil.copy(ROOT / "releasegate.yaml", tmp_path)
    shutil.copy(ROOT / "skaffold.yaml", tmp_path)
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    return load_project(tmp_path)


def objects(project, env: str = "prod", tag: str = "v1.4.2"):
    return {
        m.kind: m.obj for m in render.render(project, load_environment(project, env), parse_tag(tag), IMAGE)
    }


def test_every_kind_is_rendered_for_each_environment(project) -> None:
    for env, namespace, replicas in (("prod", "model-api-prod", 3), ("nonprod", "model-api-nonprod", 2)):
        rendered = objects(project, env)
        assert sorted(rendered) == [
            "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "ServiceAccount"
        ]  # fmt: skip
        assert {o["metadata"]["namespace"] for o in rendered.values()} == {namespace}
        # The HorizontalPodAutoscaler owns spec.replicas; the count is only the initial one.
        assert "replicas" not in rendered["Deployment"]["spec"]
        annotations = rendered["Deployment"]["metadata"]["annotations"]
        assert annotations["releasegate.dev/initial-replicas"] == str(replicas)


def test_deployment_is_production_grade(project) -> None:
    deployment = objects(project)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= container.keys()
    assert container["resources"]["limits"]["memory"] == "4Gi"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "v1.4.2"
    assert "app.kubernetes.io/version" not in deployment["spec"]["selector"]["matchLabels"]


def test_build_metadata_becomes_a_valid_label(project) -> None:
    labels = objects(project, tag="v1.4.2+build.7")["Deployment"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == "v1.4.2_build.7"


def test_same_inputs_give_byte_identical_files(project, tmp_path: Path) -> None:
    env = load_environment(project, "prod")
    first = render.write(render.render(project, env, parse_tag("v1.4.2"), IMAGE), tmp_path / "a")
    second = render.write(render.render(project, env, parse_tag("v1.4.2"), IMAGE), tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_write_removes_stale_manifests(project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old-configmap.yaml").write_text("stale")
    render.write(render.render(project, load_environment(project, "prod"), parse_tag("v1.4.2"), IMAGE), out)
    assert not (out / "old-configmap.yaml").exists()


@pytest.mark.parametrize(
    "hostile", ["x\nkind: Secret", "a: b", "{{ 7 * 7 }}", "--- \n- list", "'\"", "!!python/object"]
)
def test_hostile_values_stay_one_string(project, hostile: str) -> None:
    path = project.environments_dir / "prod.yaml"
    path.write_text(
        path.read_text().replace("LOG_LEVEL: info", f"LOG_LEVEL: {yaml.safe_dump(hostile).strip()}")
    )
    env = {
        e["name"]: e["value"]
        for e in objects(project)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["LOG_LEVEL"] == hostile


def test_missing_value_is_an_error_naming_it(project) -> None:
    path = project.environments_dir / "prod.yaml"
    path.write_text(path.read_text().replace("  service_port: 80\n", ""))
    with pytest.raises(BadInput, match="service_port"):
        objects(project)


def test_schema_violation_names_the_field(project) -> None:
    path = project.environments_dir / "prod.yaml"
    path.write_text(
        path.read_text().replace("progress_deadline_seconds: 600", "progress_deadline_seconds: ten")
    )
    with pytest.raises(BadInput, match=r"deployment.yaml: spec.progressDeadlineSeconds"):
        objects(project)


def test_an_initial_replica_count_that_is_no_whole_number_is_bad_input(project) -> None:
    path = project.environments_dir / "prod.yaml"
    path.write_text(path.read_text().replace("\n  replicas: 3\n", "\n  replicas: three\n"))
    with pytest.raises(BadInput, match=r"releasegate.dev/initial-replicas must be a whole number"):
        objects(project)


def test_image_must_be_pinned_by_digest(project) -> None:
    with pytest.raises(BadInput, match="not pinned by digest"):
        render.render(
            project, load_environment(project, "prod"), parse_tag("v1.4.2"), "repo/model-api:v1.4.2"
        )


def test_a_template_with_its_own_image_is_refused(project) -> None:
    path = project.templates_dir / "deployment.yaml.j2"
    path.write_text(path.read_text().replace("image: {{ image | q }}", "image: nginx:latest"))
    with pytest.raises(BadInput, match="not the pinned release image"):
        objects(project)


def test_a_template_rendering_two_objects_is_refused(project) -> None:
    (project.templates_dir / "extra.yaml.j2").write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(BadInput, match="exactly one object"):
        objects(project)


def test_values_outside_the_basic_multilingual_plane_reach_yaml_unchanged(project) -> None:
    from tests.emulators.skaffold_standin import load_documents

    value = "launch 🚀 𝔘 \u2028 \x85 é \\ud83d"
    env = load_environment(project, "nonprod")
    env.values["env"]["BANNER"] = value
    (manifest,) = [
        m for m in render.render(project, env, parse_tag("v1.4.2"), IMAGE) if m.kind == "Deployment"
    ]
    # go-yaml (Skaffold, kubectl) reads it: no surrogate escapes, and every character survives.
    (obj,) = load_documents(manifest.text, manifest.filename)
    variables = {e["name"]: e["value"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert variables["BANNER"] == value
    assert manifest.text.isascii()  # line separators and NEL escaped, not raw in the file


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("replica", "values.replica is not used by any template (did you mean values.replicas?)"),
        ("probes.readiness_pth", "values.probes.readiness_pth is not used by any template (did you mean"),
    ],
)
def test_a_template_value_no_template_reads_is_bad_input(project, key: str, message: str) -> None:
    env = load_environment(project, "nonprod")
    *parents, leaf = key.split(".")
    section = env.values
    for parent in parents:
        section = section[parent]
    section[leaf] = 3
    with pytest.raises(BadInput) as caught:
        render.render(project, env, parse_tag("v1.4.2"), IMAGE)
    assert message in caught.value.cause and "nonprod.yaml" in caught.value.cause


def test_values_read_whole_count_as_read(project) -> None:
    env = load_environment(project, "nonprod")
    env.values["env"]["ANY_NAME"] = "x"  # env is rendered whole: any variable name is fine
    env.values["resources"]["limits"]["ephemeral-storage"] = "1Gi"
    assert render.render(project, env, parse_tag("v1.4.2"), IMAGE)


def test_without_autoscaling_the_deployment_sets_replicas_and_no_autoscaler_is_rendered(project) -> None:
    env = load_environment(project, "prod")
    del env.values["autoscaling"]
    rendered = {m.kind: m.obj for m in render.render(project, env, parse_tag("v1.4.2"), IMAGE)}
    assert "HorizontalPodAutoscaler" not in rendered
    assert rendered["Deployment"]["spec"]["replicas"] == 3


def test_compiled_templates_are_kept_and_a_changed_template_is_compiled_again(
    project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next run (a new process: no environment in memory) reads the compiled templates from
    the cache folder; a template changed since is compiled again, never served stale."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert objects(project, "nonprod")["Service"]["spec"]["type"] == "ClusterIP"
    kept = sorted((tmp_path / "cache" / "releasegate" / "templates").glob("__jinja2_*.cache"))
    assert len(kept) >= 6  # every template rendered, and the macros they import
    render._jinja.cache_clear()  # what a new process starts with
    service = project.templates_dir / "service.yaml.j2"
    service.write_text(service.read_text().replace("type: ClusterIP", "type: NodePort"))
    assert objects(project, "nonprod")["Service"]["spec"]["type"] == "NodePort"
