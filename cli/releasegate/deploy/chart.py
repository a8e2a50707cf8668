"""Render the Helm chart exactly as Skaffold will: ``helm template`` over the profile's release.

An environment described by the chart (``renderer: chart``) deploys through a Skaffold profile
whose ``manifests.helm`` names one release. releasegate reads that release from
``skaffold.yaml`` instead of repeating it, so the objects it validates are the objects Skaffold
renders: same chart, same values files, same namespace. The pinned image and the tag reach the
chart through one values file releasegate writes, ``build/<env>/release-values.json``, which the
profile must list last (nothing after it can override the image). Release settings releasegate
would not reproduce (``setValues``, remote charts, ...) are refused rather than ignored.

Layer: adapter for what deploys: templates, helm, skaffold, programs (imports only core and deploy/).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput
from releasegate.core.version import ReleaseTag
from releasegate.deploy.process import ProgramFailed, run_program
from releasegate.deploy.skaffold import profile_manifests

if TYPE_CHECKING:
    from releasegate.core.placement import Placement

# The release fields releasegate reproduces; any other field could make Skaffold render
# something different from what was validated.
SUPPORTED_FIELDS = {"name", "chartPath", "namespace", "valuesFiles"}
HELM_TIMEOUT_SECONDS = 60
SOURCE_COMMENT = re.compile(r"^# Source: (?P<path>\S+)$", re.MULTILINE)
DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class ChartRelease:
    name: str
    chart_path: Path
    namespace: str
    values_files: tuple[Path, ...]  # the profile's values files, the release values last

    def template_argv(self, release_values: Path, kubernetes_version: str) -> list[str]:
        args = ["template", self.name, str(self.chart_path), "--namespace", self.namespace]
        for path in (*self.values_files[:-1], release_values):
            args += ["--values", str(path)]
        # Capabilities.KubeVersion as the schemas the objects are validated against.
        return [*args, "--kube-version", kubernetes_version]


def release_values_path(project: Project, env: Environment) -> Path:
    return project.build_dir(env.name) / "release-values.json"


def release_values(tag: ReleaseTag, image: str, slots: Placement = None) -> str:
    """The values releasegate sets per deploy; for blue/green, the slot to deploy to and the
    one Service <app> selects now (null before any has gone live); for canary, the track."""
    from releasegate.core.placement import Slots, Track

    values: dict[str, Any] = {"image": image, "releaseTag": tag.text}
    if isinstance(slots, Slots):
        values["blueGreen"] = {"slot": slots.target, "liveSlot": slots.live}
    if isinstance(slots, Track):
        values["canary"] = {"track": slots.name, "traffic": slots.traffic}
        if slots.pods is not None:
            values["canary"]["pods"] = slots.pods
    # JSON is YAML: helm reads it as a values file, and no value can open a new key.
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def write_release_values(project: Project, env: Environment, values: str) -> Path:
    path = release_values_path(project, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(values, encoding="utf-8")
    return path


def chart_release(project: Project, env: Environment) -> ChartRelease:
    """The one Helm release of the environment's Skaffold profile, checked for what releasegate needs."""
    where = f"{project.skaffold_file.name} profile {env.skaffold_profile}"
    helm = profile_manifests(project.skaffold_file, env.skaffold_profile).get("helm")
    releases = helm.get("releases") if isinstance(helm, dict) else None
    if not isinstance(releases, list) or len(releases) != 1 or not isinstance(releases[0], dict):
        raise BadInput(
            f"{where}: renderer chart needs exactly one manifests.helm.releases entry",
            "describe the chart release in that profile, or set renderer: templates",
        )
    release: dict[str, Any] = releases[0]
    if unsupported := sorted(set(release) - SUPPORTED_FIELDS):
        raise BadInput(
            f"{where}: releasegate does not reproduce {', '.join(unsupported)}",
            "put those settings in a values file listed in valuesFiles",
        )
    namespace = release.get("namespace", env.namespace)
    if namespace != env.namespace:
        raise BadInput(f"{where}: namespace must be {env.namespace}", "fix the release's namespace")
    name, chart_path = release.get("name"), release.get("chartPath")
    if not isinstance(name, str) or not isinstance(chart_path, str):
        raise BadInput(f"{where}: the release needs a name and a chartPath", "add them to the release")
    return ChartRelease(
        name=name,
        chart_path=project.root / chart_path,
        namespace=namespace,
        values_files=_values_files(project, env, release, where),
    )


def _values_files(
    project: Project, env: Environment, release: dict[str, Any], where: str
) -> tuple[Path, ...]:
    listed = release.get("valuesFiles", [])
    expected = release_values_path(project, env).relative_to(project.root).as_posix()
    if not isinstance(listed, list) or not listed or listed[-1] != expected:
        raise BadInput(
            f"{where}: valuesFiles must end with {expected}",
            "add it last: it carries the pinned image and tag releasegate writes for each deploy",
        )
    return tuple(project.root / str(path) for path in listed)


def template(release: ChartRelease, values_text: str, kubernetes_version: str) -> list[tuple[str, str]]:
    """``helm template`` the release with these release values: (file name, YAML text) per object."""
    output: list[str] = []
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="releasegate-values-") as folder:
        values = Path(folder) / "release-values.json"
        values.write_text(values_text, encoding="utf-8")
        argv = release.template_argv(values, kubernetes_version)
        try:
            run_program(
                "helm",
                argv,
                extra_env={},
                timeout=HELM_TIMEOUT_SECONDS,
                on_line=output.append,
                on_error_line=errors.append,
                cwd=release.chart_path.parent,
            )
        except ProgramFailed as exc:
            cause = " ".join(line.strip() for line in errors if line.strip())[:400] or "no output"
            raise BadInput(
                f"helm template {release.chart_path.name}: {cause}", "fix the chart or its values"
            ) from exc
    return split_documents("\n".join(output) + "\n")


def split_documents(text: str) -> list[tuple[str, str]]:
    """Cut helm's multi-document output into one named text per object, in output order."""
    documents: list[tuple[str, str]] = []
    for chunk in DOCUMENT_SEPARATOR.split(text):
        if not any(yaml.safe_load_all(chunk)):
            continue  # empty documents (a template that rendered nothing)
        source = SOURCE_COMMENT.search(chunk)
        stem = Path(source["path"]).stem if source else "object"
        documents.append((_unique_name(stem, documents), chunk.strip("\n") + "\n"))
    return documents


def _unique_name(stem: str, taken: list[tuple[str, str]]) -> str:
    names = {name for name, _ in taken}
    name, n = f"{stem}.yaml", 2
    while name in names:
        name, n = f"{stem}-{n}.yaml", n + 1
    return name
