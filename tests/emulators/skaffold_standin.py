"""A stand-in for the ``skaffold`` binary, which cannot be installed on these machines.

Put first on PATH (``install(bin_dir)``), it accepts ``skaffold deploy``'s flags, validates
``skaffold.yaml`` against Skaffold's official JSON schema when ``../shared/reference`` is
present, resolves the profile's ``manifests.rawYaml`` globs, renders its ``manifests.helm``
releases with the real ``helm template``, and applies every object to the cluster that
KUBECONFIG names, over HTTP, as ``kubectl apply`` would. Faults for tests:
``STANDIN_SKAFFOLD_EXIT=N`` fails with exit N, ``STANDIN_SKAFFOLD_HANG=SECONDS`` hangs,
``STANDIN_SKAFFOLD_RECORD=FILE`` records its argv and the registries DOCKER_CONFIG names;
``STANDIN_SKAFFOLD_FAULT_IMAGE=TEXT`` limits the faults to images containing TEXT;
``STANDIN_SKAFFOLD_PID_FILE=FILE`` records its process id (to check it was stopped).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .kinds import KINDS, object_path

API_VERSION = "skaffold/v4beta14"
ROOT = Path(__file__).resolve().parents[2]
HELM_RELEASE_FIELDS = {"name", "chartPath", "namespace", "valuesFiles"}
SCHEMA = ROOT.parent / "shared" / "reference" / "skaffold" / "v4beta14.json"


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "version":
        print("v2.19.0-standin")
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
        cluster = Cluster.from_kubeconfig(args.kubeconfig, args.kube_context)
    except ValueError as exc:
        print(f"parsing skaffold config: {exc}", file=sys.stderr)
        return 1
    if record := os.environ.get("STANDIN_SKAFFOLD_RECORD"):
        Path(record).write_text(json.dumps({"argv": sys.argv, "docker_config_auths": _registries()}))
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
            documents += [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
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
    return [d for d in yaml.safe_load_all(done.stdout) if d]


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
        request = urllib.request.Request(  # noqa: S310 - the kubeconfig's own server
            self.server + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def apply(self, document: dict[str, Any], namespace: str | None) -> str:
        kind, name = document["kind"], document["metadata"]["name"]
        if kind not in KINDS:
            raise ValueError(f"unsupported kind {kind}")
        namespace = namespace or document["metadata"].get("namespace") or "default"
        document["metadata"]["namespace"] = namespace
        path = object_path(kind, namespace, name)
        label = f"{kind.lower()}/{name}"
        try:
            current = self._call("GET", path)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            self._call("POST", object_path(kind, namespace), document)
            return f"{label} created"
        document["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self._call("PUT", path, document)
        return f"{label} configured"
