from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from releasegate.core.config import available_environments, load_environment, load_project
from releasegate.core.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "releasegate.yaml", tmp_path)
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    return tmp_path


def test_shipped_environments_load() -> None:
    project = load_project(ROOT)
    assert available_environments(project) == ["nonprod", "prod"]
    prod, nonprod = load_environment(project, "prod"), load_environment(project, "nonprod")
    assert (prod.protected, prod.allow_prerelease, prod.branches) == (True, False, ("main",))
    assert (nonprod.protected, nonprod.allow_prerelease, nonprod.branches) == (False, True, ("develop",))
    assert prod.namespace != nonprod.namespace


def test_adding_an_environment_is_adding_a_file(project_dir: Path) -> None:
    text = (
        (project_dir / "k8s/environments/nonprod.yaml")
        .read_text()
        .replace("model-api-nonprod", "model-api-staging")
    )
    (project_dir / "k8s/environments/staging.yaml").write_text(text)
    assert load_environment(load_project(project_dir), "staging").namespace == "model-api-staging"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("namespace: model-api-nonprod", "namespace: Model_API", "namespace must be a DNS label"),
        ("region: eu-west-1", "region: 42", "aws.region must be an AWS region"),
        ("allow_prerelease: true", "allow_prerelease: sometimes", "allow_prerelease must be true or false"),
        ("branches: [develop]", "branches: develop", "branches must be a list"),
        ("skaffold_profile: nonprod", "skaffold_profile: ''", "skaffold_profile must be"),
    ],
)
def test_invalid_environment_values_name_the_file_and_key(
    project_dir: Path, old: str, new: str, message: str
) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "nonprod")
    assert message in caught.value.cause and "nonprod.yaml" in caught.value.cause


def test_broken_yaml_and_missing_project_are_bad_input(
    project_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (project_dir / "k8s/environments/nonprod.yaml").write_text("namespace: [unclosed")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_environment(load_project(project_dir), "nonprod")
    with pytest.raises(BadInput, match=r"releasegate\.yaml not found"):
        load_project(tmp_path_factory.mktemp("empty"))


def test_repository_falls_back_to_github_repository(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project_dir / "releasegate.yaml"
    path.write_text(path.read_text().replace("github_repository: acme/model-api", "github_repository:"))
    monkeypatch.setenv("GITHUB_REPOSITORY", "other/service")
    assert load_project(project_dir).github_repository == "other/service"
    monkeypatch.delenv("GITHUB_REPOSITORY")
    with pytest.raises(BadInput, match="github_repository"):
        load_project(project_dir)


def test_renderer_defaults_to_templates_and_a_chart_needs_no_template_values(project_dir: Path) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    text = path.read_text()
    path.write_text(text.replace("renderer: templates\n", ""))
    assert load_environment(load_project(project_dir), "nonprod").renderer == "templates"
    without_values = text[: text.index("values:")].replace("renderer: templates", "renderer: chart")
    path.write_text(without_values)
    chart = load_environment(load_project(project_dir), "nonprod")
    assert (chart.renderer, chart.values) == ("chart", {})
    path.write_text(without_values.replace("renderer: chart", "renderer: templates"))
    with pytest.raises(BadInput, match="values must be a mapping"):
        load_environment(load_project(project_dir), "nonprod")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("protected: true", "protectd: true", "unknown key protectd (did you mean protected?)"),
        (
            "promote_from: nonprod",
            "promote_form: nonprod",
            "unknown key promote_form (did you mean promote_from?)",
        ),
        ("  region: eu-west-1", "  regoin: eu-west-1", "unknown key aws.regoin (did you mean aws.region?)"),
        ("branches: [main]", "branches: [main]\nfavourite_colour: blue", "unknown key favourite_colour"),
    ],
)
def test_a_typo_in_an_environment_file_is_bad_input_naming_the_nearest_key(
    project_dir: Path, old: str, new: str, message: str
) -> None:
    path = project_dir / "k8s/environments/prod.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "prod")
    assert message in caught.value.cause and "prod.yaml" in caught.value.cause


def test_a_typo_in_releasegate_yaml_is_bad_input(project_dir: Path) -> None:
    path = project_dir / "releasegate.yaml"
    path.write_text(path.read_text().replace("tag_prefix:", "tag_prefx:"))
    with pytest.raises(BadInput, match=r"unknown key tag_prefx \(did you mean tag_prefix\?\)"):
        load_project(project_dir)


def test_a_renamed_key_says_what_it_is_called_now(project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from releasegate.core import config_reader

    # The table of renames is data the next version fills in; the message is what is tested.
    monkeypatch.setitem(config_reader.RENAMED, "allow_prereleases", "allow_prerelease")
    path = project_dir / "k8s/environments/nonprod.yaml"
    path.write_text(path.read_text().replace("allow_prerelease:", "allow_prereleases:"))
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "nonprod")
    assert "allow_prereleases is now called allow_prerelease" in caught.value.cause
    assert "rename it" in caught.value.hint


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  attempts: 30", "  attempts: 0", "smoke.attempts must be a whole number above 0"),
        ("  attempts: 30", "  atempts: 30", "unknown key smoke.atempts (did you mean smoke.attempts?)"),
        ("      path: /health/ready", "      path: health/ready",
         "smoke.checks[0].path must be a path starting with /"),
        ("      method: POST", "      method: DELETE", "smoke.checks[1].method must be GET or POST or PUT"),
        ("      json_file: k8s/smoke/predict-request.json", "      json_file: k8s/smoke/missing.json",
         "smoke.checks[1].json_file must be a readable JSON file"),
        ("      json_file: k8s/smoke/predict-request.json", "      json_file: ../../etc/passwd",
         "json_file must be a path inside the project"),
        ("      json_file: k8s/smoke/predict-request.json",
         "      json_file: k8s/smoke/predict-request.json\n      json: {}", "json or json_file, not both"),
    ],
)  # fmt: skip
def test_smoke_checks_are_validated_naming_the_key(
    project_dir: Path, old: str, new: str, message: str
) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "nonprod")
    assert message in caught.value.cause


def test_shipped_smoke_checks_load_with_the_sample_request() -> None:
    smoke = load_environment(load_project(ROOT), "prod").smoke
    assert smoke is not None and (smoke.attempts, smoke.interval, smoke.each_pod) == (30, 3.0, False)
    health, prediction = smoke.checks
    assert (health.method, health.path, health.expect_status) == ("GET", "/health/ready", 200)
    assert (
        prediction.method == "POST"
        and prediction.body["inputs"]
        and prediction.expect_json == {"model": "model-api"}
    )


def test_the_strategy_defaults_to_rolling_and_names_what_is_available(project_dir: Path) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    assert load_environment(load_project(project_dir), "nonprod").strategy.type == "rolling"
    text = path.read_text()
    path.write_text(text + "strategy: {type: rolling}\n")
    assert load_environment(load_project(project_dir), "nonprod").strategy.type == "rolling"
    path.write_text(text + "strategy: {type: linear}\n")
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "nonprod")
    assert "strategy.type 'linear' is not available in this version" in caught.value.cause
    assert caught.value.hint == "use one of: rolling, bluegreen, canary"
    path.write_text(text + "strategy: {type: rolling, slots: 2}\n")
    with pytest.raises(BadInput, match=r"unknown key strategy\.slots"):
        load_environment(load_project(project_dir), "nonprod")
    # A blue/green key on a rolling environment is a mistake, not a setting.
    path.write_text(text + "strategy: {type: rolling, keep_previous: false}\n")
    with pytest.raises(BadInput, match=r"unknown key strategy\.keep_previous"):
        load_environment(load_project(project_dir), "nonprod")


def test_bluegreen_reads_its_settings_with_their_defaults(project_dir: Path) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    text = path.read_text()
    path.write_text(text + "strategy: {type: bluegreen}\n")
    strategy = load_environment(load_project(project_dir), "nonprod").strategy
    assert (strategy.type, strategy.keep_previous, strategy.pause_before_switch) == ("bluegreen", True, False)
    path.write_text(text + "strategy: {type: bluegreen, keep_previous: false, pause_before_switch: true}\n")
    strategy = load_environment(load_project(project_dir), "nonprod").strategy
    assert (strategy.keep_previous, strategy.pause_before_switch) == (False, True)
    path.write_text(text + "strategy: {type: bluegreen, pause_before_swich: true}\n")
    with pytest.raises(BadInput, match=r"did you mean strategy\.pause_before_switch"):
        load_environment(load_project(project_dir), "nonprod")
    path.write_text(text + "strategy: {type: bluegreen, keep_previous: 'yes'}\n")
    with pytest.raises(BadInput, match=r"keep_previous"):
        load_environment(load_project(project_dir), "nonprod")
    assert strategy.scale_down_delay == 30.0  # the default: the data plane follows late
    path.write_text(text + "strategy: {type: bluegreen, scale_down_delay: 5}\n")
    assert load_environment(load_project(project_dir), "nonprod").strategy.scale_down_delay == 5.0
    path.write_text(text + "strategy: {type: bluegreen, scale_down_delay: -1}\n")
    with pytest.raises(BadInput, match=r"scale_down_delay"):
        load_environment(load_project(project_dir), "nonprod")
    path.write_text(text + "strategy: {type: rolling, scale_down_delay: 5}\n")  # leaving blue/green
    assert load_environment(load_project(project_dir), "nonprod").strategy.scale_down_delay == 5.0


CANARY = (
    "strategy: {type: canary, traffic: gateway, route: model-api, "
    "steps: [{weight: 10, pause: 30}, {weight: 50, pause: approval}]"
)
AMP = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1"


def test_canary_reads_its_steps_and_analysis(project_dir: Path) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    analysis = f", analysis: {{prometheus: {{url: '{AMP}', query: 'sum(x)', max: 0.01, sigv4: true}}}}}}\n"
    path.write_text(path.read_text() + CANARY + analysis)
    strategy = load_environment(load_project(project_dir), "nonprod").strategy
    assert (strategy.type, strategy.traffic, strategy.route) == ("canary", "gateway", "model-api")
    assert [(s.weight, s.pause, s.approval) for s in strategy.steps] == [(10, 30.0, False), (50, None, True)]
    assert strategy.analysis is not None and strategy.analysis.interval == 10.0
    prometheus = strategy.analysis.prometheus
    found = (prometheus.query, prometheus.max, prometheus.sigv4, prometheus.service)
    assert found == ("sum(x)", 0.01, True, None)


def istio(steps: str = "[{weight: 10, pause: 1}]", analysis: str = "") -> str:
    more = f", analysis: {analysis}" if analysis else ""
    return f"strategy: {{type: canary, traffic: istio, route: r, steps: {steps}{more}}}"


@pytest.mark.parametrize(
    ("strategy", "words"),
    [
        (istio().replace("traffic: istio, ", ""), "strategy.traffic must be gateway"),
        (istio().replace("route: r, ", ""), "strategy.route must be"),
        ("strategy: {type: canary, traffic: replicas, route: r, steps: [{weight: 1, pause: 1}]}",
         "strategy.route has no use with traffic: replicas"),
        (istio("[]"), "strategy.steps must be a list"),
        (istio("[{weight: 0, pause: 1}]"), "steps[0].weight must be a whole percentage from 1 to 100"),
        (istio("[{weight: 101, pause: 1}]"), "strategy.steps[0].weight must be"),
        (istio("[{weight: 10}]"), "strategy.steps[0].pause must be a number of seconds, or approval"),
        (istio("[{weight: 10, pause: later}]"), "strategy.steps[0].pause must be a number of seconds"),
        (istio("[{weight: 10, pause: 1, wait: 2}]"), "unknown key strategy.steps[0].wait"),
        (istio(analysis="{prometheus: {query: q, max: 1}}"),
         "strategy.analysis.prometheus.url must be given, or service"),
        (istio(analysis="{prometheus: {service: 'prometheus:9090', query: q, max: 1}}"),
         "must be namespace/name:port"),
        (istio(analysis="{prometheus: {service: 'm/p:9090', query: q, max: 1, sigv4: true}}"),
         "sigv4 must be used with url"),
        (istio(analysis="{prometheus: {url: 'http://p:9090', query: q, max: low}}"), "max must be a number"),
        (istio(analysis="{prometheus: {url: 'http://p:9090', query: q, max: .inf}}"), "max must be a number"),
        (istio(analysis="{interval: 0, prometheus: {url: 'http://p:9090', query: q, max: 1}}"),
         "strategy.analysis.interval must be a number of seconds above 0"),
    ],
)  # fmt: skip
def test_canary_settings_are_checked_with_the_key_named(project_dir: Path, strategy: str, words: str) -> None:
    path = project_dir / "k8s/environments/nonprod.yaml"
    path.write_text(path.read_text() + strategy + "\n")
    with pytest.raises(BadInput) as caught:
        load_environment(load_project(project_dir), "nonprod")
    assert words in caught.value.cause
