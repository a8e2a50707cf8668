"""A stand-in for the ``skaffold`` binary, which cannot be installed on these machines.

Put first on PATH (``install(bin_dir)``), it accepts ``skaffold deploy``'s flags, validates
``skaffold.yaml`` against Skaffold's official JSON schema when ``../shared/reference`` is
present, resolves the profile's ``manifests.rawYaml`` globs, renders its ``manifests.helm``
releases with the real ``helm template``, and applies every object to the cluster that
KUBECONFIG names, over HTTP, as ``kubectl apply`` would. Faults for tests:
``STANDIN_SKAFFOLD_EXIT=N`` fails with exit N, ``STANDIN_SKAFFOLD_HANG=SECONDS`` hangs,
``STANDIN_SKAFFOLD_RECORD=FILE`` records its argv, its environment's variable names and the
registries DOCKER_CONFIG names;
``STANDIN_SKAFFOLD_FAULT_IMAGE=TEXT`` limits the faults to images containing TEXT;
``STANDIN_SKAFFOLD_PID_FILE=FILE`` records its process id (to check it was stopped).

Behaviours of the real Skaffold v2.24 it keeps (read from its source):
- every run stamps ``skaffold.dev/run-id`` (a new UUID unless ``--label skaffold.dev/run-id=…``
  fixes it) into every ``metadata.labels`` of workload kinds, pod templates included
  (``pkg/skaffold/kubernetes/manifest/labels.go``; selectors are left alone);
- manifests are read with go-yaml, which refuses ``\\uD800``–``\\uDFFF`` escapes in
  double-quoted scalars ("found invalid Unicode character escape code");
- ``kubectl apply`` is a three-way merge through the ``last-applied-configuration`` annotation:
  a field that neither the last applied nor the new manifest sets keeps its live value; its
  writes name the field manager ``kubectl-client-side-apply``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

from .kinds import KINDS, api_version, object_path

API_VERSION = "skaffold/v4beta14"
ROOT = Path(__file__).resolve().parents[2]
HELM_RELEASE_FIELDS = {"name", "chartPath", "namespace", "valuesFiles"}
SCHEMA = ROOT.parent / "shared" / "reference" / "skaffold" / "v4beta14.json"
RUN_ID = "skaffold.dev/run-id"
# Kinds whose metadata (at any depth: pod templates too) Skaffold labels (TransformAllowlist).
LABELLED_KINDS = {"Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_PATCH_RETRY = 5  # kubectl apply's patcher: conflicts retried with a fresh read
DOUBLE_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')
ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")


def install(bin_dir: Path) -> Path:
    """Write an executable ``skaffold`` into ``bin_dir`` that runs this module."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "skaffold"
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.emulators.skaffold_standin import main\nsys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="skaffold")
    parser.add_argument("command", choices=["deploy", "version"])
    parser.add_argument("-f", "--filename", default="skaffold.yaml")
    parser.add_argument("-p", "--profile", action="append", default=[])
    parser.add_argument("-n", "--namespace")
    parser.add_argument("-i", "--images", action="append", default=[])
    parser.add_argument("--kube-context")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--status-check", default="true")
    parser.add_argument("--tail", default="false")
    parser.add_argument("--interactive", default="true")
    parser.add_argument("--update-check", default="true")
    parser.add_argument("-l", "--label", action="append", default=[])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "version":
        print("v2.24.0-standin")
        return 0
    if record := os.environ.get("STANDIN_SKAFFOLD_PID_FILE"):
        Path(record).write_text(str(os.getpid()))
    # Faults hit every run, or only runs deploying an image containing STANDIN_SKAFFOLD_FAULT_IMAGE
    # (so that a restore of the previous release can still succeed).
    faulty = os.environ.get("STANDIN_SKAFFOLD_FAULT_IMAGE", "")
    at_fault = not faulty or any(faulty in image for image in args.images)
    if at_fault and (hang := float(os.environ.get("STANDIN_SKAFFOLD_HANG", "0"))):
        print("Starting deploy...", flush=True)
        time.sleep(hang)
    if at_fault and (code := int(os.environ.get("STANDIN_SKAFFOLD_EXIT", "0"))):
        print('error: deploying "model-api": kubectl apply: exit status 1 (injected)', flush=True)
        return code
    try:
        config = load_config(Path(args.filename), args.profile)
        documents = manifests(config, Path(args.filename).parent, args.namespace)
        stamp_labels(documents, run_labels(args.label))
        cluster = Cluster.from_kubeconfig(args.kubeconfig, args.kube_context)
    except ValueError as exc:
        print(f"parsing skaffold config: {exc}", file=sys.stderr)
        return 1
    if record := os.environ.get("STANDIN_SKAFFOLD_RECORD"):
        recorded = {
            "argv": sys.argv,
            "docker_config": os.environ.get("DOCKER_CONFIG"),
            "docker_config_auths": _registries(),
            "environment": sorted(os.environ),  # the names only
        }
        Path(record).write_text(json.dumps(recorded))
    print("Tags used in deployment:")
    for image in args.images:
        print(f" - {image}")
    print("Starting deploy...")
    for document in documents:
        try:
            print(f" - {cluster.apply(document, args.namespace)}")
        except urllib.error.HTTPError as exc:
            print(
                f"error: applying {document.get('kind')}: {exc.code} {exc.read().decode()[:200]}",
                file=sys.stderr,
            )
            return 1
    print("Deploy complete.", flush=True)
    return 0


def _registries() -> list[str]:
    """The registries DOCKER_CONFIG holds credentials for (never the credentials)."""
    folder = os.environ.get("DOCKER_CONFIG")
    if not folder or not (Path(folder) / "config.json").exists():
        return []
    return sorted(json.loads((Path(folder) / "config.json").read_text()).get("auths", {}))


def load_config(path: Path, profiles: list[str]) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or config.get("apiVersion") != API_VERSION:
        raise ValueError(f"{path}: apiVersion must be {API_VERSION}")
    validate_schema(config)
    by_name = {p["name"]: p for p in config.get("profiles", [])}
    for name in profiles:
        if name not in by_name:
            raise ValueError(f'couldn\'t find profile "{name}"')
        for key, value in by_name[name].items():
            if key not in ("name", "activation", "patches"):
                config[key] = value  # a profile's section replaces the base section
    return config


def validate_schema(config: dict[str, Any]) -> None:
    if not SCHEMA.exists():
        return  # a user's own clone: no reference schema, structural checks only
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = list(validator.iter_errors(config))
    if errors:
        # The top level is an anyOf: its sub-errors say what is actually wrong.
        details = [e.message for error in errors for e in (error.context or [error])]
        raise ValueError("invalid skaffold config: " + "; ".join(details[:3]))


def manifests(config: dict[str, Any], base: Path, namespace: str | None) -> list[dict[str, Any]]:
    """Every object the config renders: its rawYaml files, then each Helm release's templates."""
    documents = []
    for pattern in config.get("manifests", {}).get("rawYaml", []):
        paths = sorted(glob.glob(str(base / pattern)))
        if not paths:
            raise ValueError(f"manifests.rawYaml: no files match {pattern}")
        for path in paths:
            documents += load_documents(Path(path).read_text(encoding="utf-8"), path)
    for release in config.get("manifests", {}).get("helm", {}).get("releases", []):
        documents += helm_template(release, base, namespace)
    return documents


def helm_template(release: dict[str, Any], base: Path, namespace: str | None) -> list[dict[str, Any]]:
    """Render one release the way Skaffold's helm renderer does: ``helm template`` with the
    release's values files, from the helm binary on PATH."""
    if unsupported := sorted(set(release) - HELM_RELEASE_FIELDS):
        raise ValueError(f"the stand-in does not implement helm release fields {unsupported}")
    helm = shutil.which("helm")
    if helm is None:
        raise ValueError("helm not found on PATH (skaffold renders charts with it)")
    argv = [helm, "template", release["name"], str(base / release["chartPath"])]
    argv += ["--namespace", release.get("namespace") or namespace or "default"]
    for values in release.get("valuesFiles", []):
        argv += ["--values", str(base / values)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ValueError(f"helm template {release['name']}: {done.stderr.strip()[:300]}")
    return load_documents(done.stdout, f"helm template {release['name']}")


def load_documents(text: str, where: str) -> list[dict[str, Any]]:
    refuse_invalid_escapes(text, where)
    return [d for d in yaml.safe_load_all(text) if d]


def refuse_invalid_escapes(text: str, where: str) -> None:
    """go-yaml's scanner: a \\u or \\U escape naming a surrogate (or past U+10FFFF) is an
    error, where PyYAML would quietly decode it into a lone surrogate."""
    for quoted in DOUBLE_QUOTED.finditer(text):
        for escape in ESCAPE.finditer(quoted.group()):
            code = escape.group(1)
            if code[0] in "uU" and len(code) > 1:
                value = int(code[1:], 16)
                if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
                    line = text.count("\n", 0, quoted.start()) + 1
                    raise ValueError(
                        f"reading Kubernetes YAML {where}: yaml: line {line}: "
                        "found invalid Unicode character escape code"
                    )


def run_labels(custom: list[str]) -> dict[str, str]:
    """Skaffold's labeller: a fresh run-id per run, then the --label values (which may fix it).
    The flag is a string slice: one value may hold several comma-separated labels."""
    labels = {RUN_ID: str(uuid.uuid4())}
    for item in (part for value in custom for part in value.split(",")):
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def stamp_labels(documents: list[dict[str, Any]], labels: dict[str, str]) -> None:
    for document in documents:
        if document.get("kind") in LABELLED_KINDS:
            _stamp(document, labels)


def _stamp(node: Any, labels: dict[str, str]) -> None:
    """Every ``metadata`` map gets the labels; an existing label is kept, except the run-id."""
    if isinstance(node, list):
        for item in node:
            _stamp(item, labels)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "metadata" and isinstance(value, dict):
            have = value.setdefault("labels", {})
            for name, text in labels.items():
                if name not in have or name == RUN_ID:
                    have[name] = text
        else:
            _stamp(value, labels)


class Cluster:
    def __init__(self, server: str, token: str) -> None:
        self.server, self.token = server.rstrip("/"), token

    @classmethod
    def from_kubeconfig(cls, path: str | None, context: str | None) -> Cluster:
        location = path or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        config = yaml.safe_load(Path(location).read_text())
        name = context or config.get("current-context")
        ctx = next((c["context"] for c in config["contexts"] if c["name"] == name), None)
        if ctx is None:
            raise ValueError(f'kube-context "{name}" not found in {location}')
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        return cls(cluster["server"], user.get("token", ""))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        # kubectl's client-side apply names its field manager on every write
        query = "?fieldManager=kubectl-client-side-apply" if method in ("POST", "PUT", "PATCH") else ""
        request = urllib.request.Request(
            self.server + path + query,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def apply(self, document: dict[str, Any], namespace: str | None) -> str:
        """``kubectl apply`` (client-side): create with the last-applied annotation, or merge
        three ways: what the last apply set and this one does not is removed, what this one
        sets is written, and everything else keeps its live value (an HPA's replicas)."""
        kind, name = document["kind"], document["metadata"]["name"]
        if kind not in KINDS:
            raise ValueError(f"unsupported kind {kind}")
        namespace = namespace or document["metadata"].get("namespace") or "default"
        document["metadata"]["namespace"] = namespace
        applied = json.dumps(document, sort_keys=True, separators=(",", ":"))
        path = object_path(kind, namespace, name)
        group = api_version(kind).rpartition("/")[0]  # kubectl names a resource kind.group/name
        label = f"{kind.lower()}{'.' + group if group else ''}/{name}"
        try:
            live = self._call("GET", path)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            document["metadata"].setdefault("annotations", {})[LAST_APPLIED] = applied
            self._call("POST", object_path(kind, namespace), document)
            return f"{label} created"
        # kubectl's patcher retries a conflict (a controller wrote the object in between) with
        # a fresh read, up to maxPatchRetry (5) times.
        for attempt in range(1, MAX_PATCH_RETRY + 1):
            annotations = live["metadata"].get("annotations") or {}
            last = json.loads(annotations.get(LAST_APPLIED) or "{}")
            live.pop("status", None)
            merged = three_way_merge(live, last, document)
            merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = applied
            merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
                self._call("PUT", path, merged)
                break
            except urllib.error.HTTPError as exc:
                if exc.code != 409 or attempt == MAX_PATCH_RETRY:
                    raise
                live = self._call("GET", path)
        return f"{label} configured"


def three_way_merge(live: dict[str, Any], last: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; lists and scalars are replaced (kubectl merges some lists by key,
    which the objects here never rely on)."""
    merged = dict(live)
    for key in last:
        if key not in new:
            merged.pop(key, None)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(live.get(key), dict):
            before = last.get(key) if isinstance(last.get(key), dict) else {}
            merged[key] = three_way_merge(live[key], before, value)
        else:
            merged[key] = value
    return merged
