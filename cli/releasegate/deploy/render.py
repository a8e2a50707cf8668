"""Render the manifests Skaffold deploys, by one of two renderers, and check them the same way.

``templates``: k8s/templates/*.yaml.j2 through Jinja2. Every value reaches YAML through the
``q`` filter (JSON is valid YAML flow syntax, so a value can never open a new key, document or
tag) and ``StrictUndefined`` turns a missing value into an error. ``chart``: the Helm chart
through ``helm template``, as the environment's Skaffold profile describes it (``chart.py``).

Either way the same inputs give byte-identical output, and every object must be in the
environment's namespace, run only the pinned release image, and validate against the
Kubernetes schemas.

Layer: adapter for what deploys: templates, helm, skaffold, programs (imports only core and deploy/).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from releasegate.core.applyset import applyset_id, labelled
from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput
from releasegate.core.placement import INITIAL_REPLICAS, Manifest, Placement, Slots, Track, workload_name
from releasegate.core.template_values import ReadTracking
from releasegate.core.version import ReleaseTag
from releasegate.deploy import chart
from releasegate.deploy.skaffold import profile_manifests

# libyaml's C parser and emitter where PyYAML has them (the same safe subset): a render reads
# and writes a dozen objects, twice per deploy.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# The Kubernetes version whose schemas rendered objects must satisfy (EKS standard support).
KUBERNETES_VERSION = "1.33.0"
PINNED_IMAGE = re.compile(r"[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+@sha256:[a-f0-9]{64}")
NON_ASCII = re.compile(r"[^\x00-\x7f]")
NAMESPACED_KINDS = {
    "Deployment",
    "Service",
    "ServiceAccount",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ConfigMap",
}


def quote_for_yaml(value: Any) -> str:
    """A Jinja filter: any value as a single YAML flow scalar or collection, in ASCII.

    JSON's own ``ensure_ascii`` writes a character beyond U+FFFF as a surrogate pair
    (``\\ud83d\\ude80``), which go-yaml (Skaffold, kubectl) refuses and PyYAML decodes into
    two broken characters. YAML's double-quoted scalars have ``\\UXXXXXXXX`` for those, so
    every non-ASCII character is escaped here instead: the value reaches the cluster exactly,
    and no raw line separator (U+2028, NEL) can break a line of the file.
    """
    if isinstance(value, ReadTracking):
        value.read_whole()
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=_not_serialisable)
    # Outside strings JSON is pure ASCII, so every non-ASCII character is inside a quoted scalar.
    return NON_ASCII.sub(_yaml_escape, text)


def _yaml_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _not_serialisable(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing value
    raise TypeError(f"{type(value).__name__} cannot be rendered into YAML")


def version_label(tag: ReleaseTag) -> str:
    # Label values allow [A-Za-z0-9._-]; semver build metadata uses '+'.
    return tag.text.replace("+", "_")[:63]


def render(
    project: Project,
    env: Environment,
    tag: ReleaseTag,
    image: str,
    slots: Placement = None,
    validate: bool = True,
) -> list[Manifest]:
    """The release's objects; for blue/green and canary, ``slots`` says which slot or track
    they are for. ``validate`` False skips the schema check: what is only asked for its kinds
    and names (pruning's), never applied."""
    if not PINNED_IMAGE.fullmatch(image):
        raise BadInput(f"image {image!r} is not pinned by digest", "pass REPOSITORY@sha256:<64 hex>")
    if env.renderer == "chart":
        manifests = _render_chart(project, env, tag, image, slots)
    else:
        if env.deployer == "skaffold":  # `apply` sends what is rendered here: no profile is read
            _require_profile_renders("rawYaml", project, env)
        manifests = _render_templates(project, env, tag, image, slots)
    for manifest in manifests if validate else ():
        _check(manifest, env, image)
    set_id = applyset_id(project.app, env.namespace)  # every object rendered is a member
    manifests = [_in_applyset(m, set_id) for m in manifests]
    workload = workload_name(project.app, slots)
    if not any(m.kind == "Deployment" and m.name == workload for m in manifests):
        raise BadInput(
            f"no Deployment named {workload} among the rendered objects",
            "the Deployment must carry the app name from releasegate.yaml (blue/green: <app>-<slot>, "
            "canary: <app>-canary): "
            "it is what is verified",
        )
    return manifests


def describe(project: Project, env: Environment) -> str:
    """Where the environment's objects come from, for progress lines."""
    if env.renderer == "chart":
        return f"the chart in {chart.chart_release(project, env).chart_path.relative_to(project.root)}/"
    return f"{project.templates_dir.relative_to(project.root)}/"


def _require_profile_renders(kind: str, project: Project, env: Environment) -> None:
    """The environment's renderer and its Skaffold profile must agree, or Skaffold would deploy
    objects releasegate never rendered nor validated."""
    manifests = profile_manifests(project.skaffold_file, env.skaffold_profile)
    if set(manifests) != {kind}:
        raise BadInput(
            f"environment {env.name} uses renderer {env.renderer}, but skaffold profile "
            f"{env.skaffold_profile} renders {', '.join(sorted(manifests)) or 'nothing'}",
            f"give that profile only manifests.{kind}, or change renderer in {env.name}'s environment file",
        )


def _render_chart(
    project: Project, env: Environment, tag: ReleaseTag, image: str, slots: Placement
) -> list[Manifest]:
    _require_profile_renders("helm", project, env)
    release = chart.chart_release(project, env)
    documents = chart.template(release, chart.release_values(tag, image, slots), KUBERNETES_VERSION)
    return [
        _parse(filename, text, f"chart {release.chart_path.name} {filename}") for filename, text in documents
    ]


def _render_templates(
    project: Project, env: Environment, tag: ReleaseTag, image: str, slots: Placement
) -> list[Manifest]:
    bluegreen = slots if isinstance(slots, Slots) else None
    canary = slots if isinstance(slots, Track) else None
    context = {
        "workload": workload_name(project.app, slots),
        "slot": bluegreen.target if bluegreen else None,  # blue/green only
        "live_slot": bluegreen.live if bluegreen else None,
        "track": canary.name if canary else None,  # canary only
        "traffic": canary.traffic if canary else None,
        "canary_pods": canary.pods if canary else None,
        "app": project.app,
        "instance": f"{project.app}-{env.name}",
        "namespace": env.namespace,
        "env": env.name,
        "tag": tag.text,
        "version_label": version_label(tag),
        "image": image,
        "values": (values := ReadTracking(env.values)),
    }
    templates = _jinja(project.templates_dir)
    names = sorted(n for n in templates.list_templates() if n.endswith(".yaml.j2") and "/" not in n)
    if not names:
        raise BadInput(f"no templates in {project.templates_dir}", "add k8s/templates/<kind>.yaml.j2")
    rendered = [_render_one(templates, name, context) for name in names]
    manifests = [m for m in rendered if m is not None]
    if unread := values.unread():
        path = project.environments_dir / f"{env.name}.yaml"
        raise BadInput(f"{path}: {unread[0]}", f"fix the key in {path.name}, or remove it")
    return manifests


def write_for_deploy(
    project: Project,
    env: Environment,
    tag: ReleaseTag,
    image: str,
    manifests: list[Manifest],
    slots: Placement = None,
) -> list[Path]:
    """Everything Skaffold reads for this release: the manifests, and for a chart the values
    file carrying the pinned image and tag (and the slots)."""
    paths = write(manifests, project.build_dir(env.name))
    if env.renderer == "chart":
        paths.append(chart.write_release_values(project, env, chart.release_values(tag, image, slots)))
    return paths


def write(manifests: list[Manifest], out_dir: Path) -> list[Path]:
    """Write the manifests, replacing any earlier render in ``out_dir`` so that an object
    removed from the templates is not deployed from a stale file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.yaml"):
        stale.unlink()
    paths = []
    for manifest in manifests:
        path = out_dir / manifest.filename
        path.write_text(manifest.text, encoding="utf-8")
        paths.append(path)
    return paths


@lru_cache(maxsize=16)
def _jinja(templates_dir: Path) -> jinja2.Environment:
    """One environment per templates folder for the process: each template is compiled once
    (a deploy renders again to know what pruning keeps; clusters render the same templates),
    and compiled again when its file changes (jinja checks the file's time). Compiled templates
    are kept between runs too (``_compiled_templates``): compiling is a quarter of a render."""
    environment = jinja2.Environment(
        bytecode_cache=_compiled_templates(),
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, not HTML: values are quoted by the q filter
        keep_trailing_newline=True,
    )
    environment.filters["q"] = quote_for_yaml
    return environment


def _compiled_templates() -> jinja2.BytecodeCache | None:
    """Jinja's cache of compiled templates in the user's cache folder ($XDG_CACHE_HOME, else
    ~/.cache): code compiled from the templates' text, checked against it before each use (so a
    changed template is compiled again), never a rendered value. None where no folder can be made."""
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        folder = base / "releasegate" / "templates"
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to be found
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def _render_one(templates: jinja2.Environment, name: str, context: dict[str, Any]) -> Manifest | None:
    """The template's one object, or None when it renders none (an `{% if %}` around it)."""
    filename = name.removesuffix(".j2")
    try:
        text = templates.get_template(name).render(context)
    except jinja2.UndefinedError as exc:
        raise BadInput(f"template {name}: {exc.message}", "add the value to the environment file") from exc
    except jinja2.TemplateError as exc:
        raise BadInput(f"template {name}: {exc}", "fix the template") from exc
    if not _documents(text, f"template {name}"):
        return None
    return _parse(filename, text, f"template {name}")


def _documents(text: str, where: str) -> list[Any]:
    try:
        return [d for d in yaml.load_all(text, Loader=SAFE_LOADER) if d is not None]
    except yaml.YAMLError as exc:
        raise BadInput(f"{where} does not render to valid YAML", "fix the template") from exc


def _in_applyset(manifest: Manifest, set_id: str) -> Manifest:
    """``manifest`` with the ApplySet's part-of label on the object (its text written again)."""
    obj = labelled(manifest.obj, set_id)
    return Manifest(manifest.filename, yaml.dump(obj, Dumper=SAFE_DUMPER, sort_keys=False), obj)


def _parse(filename: str, text: str, where: str) -> Manifest:
    documents = _documents(text, where)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise BadInput(f"{where} must render exactly one object", "split it into one file per object")
    return Manifest(filename=filename, text=text, obj=documents[0])


def _check(manifest: Manifest, env: Environment, image: str) -> None:
    where = f"rendered {manifest.filename}"
    initial = (manifest.obj["metadata"].get("annotations") or {}).get(INITIAL_REPLICAS)
    if initial is not None and not (str(initial).isdigit() and int(initial) > 0):
        raise BadInput(
            f"{where}: {INITIAL_REPLICAS} must be a whole number above 0, not {str(initial)[:20]!r}",
            "fix replicas in the environment's values (or replicaCount in the chart's)",
        )
    if manifest.kind in NAMESPACED_KINDS and manifest.obj["metadata"].get("namespace") != env.namespace:
        raise BadInput(
            f"{where}: namespace must be {env.namespace}", "use {{ namespace | q }} in the template"
        )
    for container_image in _container_images(manifest.obj):
        if container_image != image:
            raise BadInput(
                f"{where}: image {container_image} is not the pinned release image", "use {{ image | q }}"
            )
    _validate_schema(manifest, where)


def _container_images(obj: dict[str, Any]) -> list[str]:
    pod_spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    containers = pod_spec.get("containers", []) + pod_spec.get("initContainers", [])
    return [str(c.get("image")) for c in containers]


def _validate_schema(manifest: Manifest, where: str) -> None:
    import kubernetes_validate  # heavy (schemas for every Kubernetes version): only when rendering

    try:
        kubernetes_validate.validate(manifest.obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "(top level)"
        raise BadInput(f"{where}: {path}: {exc.message}", "fix the template or the values") from exc
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise BadInput(f"{where}: unknown kind or apiVersion", "use a Kubernetes 1.33 API") from exc
