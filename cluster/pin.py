"""Regenerate the real tier's wrapper Go modules in cluster/modules/ from cluster/versions.env.

Each real part is built from the Go module proxy, but `go install MODULE@VERSION` refuses a module
whose go.mod has replace or exclude directives, and Kubernetes', etcd's and Skaffold's all do. So
each part gets a small wrapper module that requires the upstream module and carries its directives:

- a replace that points into the upstream repository (Kubernetes' `./staging/src/k8s.io/...`,
  etcd's `../api`) names a sibling module released with it: the wrapper replaces it with that
  sibling at the matching version (Kubernetes v1.37.2 ships its staging modules as v0.37.2, etcd
  tags every module with the same version);
- any other replace, and every exclude, is copied as it is (Skaffold pins client-go and friends);
- the binaries to build are the module's `tool` lines.

The lists are read from the downloaded go.mod with `go mod edit -json`, never written by hand.
Run it after changing a version, then commit cluster/modules/*/go.mod and go.sum.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Part:
    name: str
    module: str
    version_key: str
    tools: tuple[str, ...]
    # The checksum database this machine reaches has no entry for skaffold (v2.19.0 and v2.24.0:
    # its lookup answers 404), so its hash is taken from the proxy once and kept in go.sum.
    unchecked: bool = False


PARTS = (
    Part(
        "kubernetes",
        "k8s.io/kubernetes",
        "KUBERNETES",
        tuple(
            f"k8s.io/kubernetes/cmd/{cmd}"
            for cmd in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        ),
    ),
    Part("etcd", "go.etcd.io/etcd/server/v3", "ETCD", ("go.etcd.io/etcd/server/v3",)),
    Part("kwok", "sigs.k8s.io/kwok", "KWOK", ("sigs.k8s.io/kwok/cmd/kwok",)),
    Part(
        "skaffold",
        "github.com/GoogleContainerTools/skaffold/v2",
        "SKAFFOLD",
        ("github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold",),
        unchecked=True,
    ),
)


def read_versions(path: Path = HERE / "versions.env") -> dict[str, str]:
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def go(*args: str, cwd: Path, part: Part | None = None) -> str:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off"}
    if part is not None and part.unchecked:
        env["GONOSUMDB"] = part.module
    done = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"go {' '.join(args)} failed in {cwd}:\n{done.stderr.strip()}\n{done.stdout.strip()}")
    return done.stdout


def upstream_gomod(part: Part, version: str, scratch: Path) -> dict:
    """The upstream module's go.mod as `go mod edit -json` reads it."""
    info = json.loads(go("mod", "download", "-json", f"{part.module}@{version}", cwd=scratch, part=part))
    return json.loads(go("mod", "edit", "-json", info["GoMod"], cwd=scratch))


def sibling_version(part: Part, version: str) -> str:
    """The version at which a module released from the same repository goes with `version`."""
    if part.name == "kubernetes":
        return "v0." + version.removeprefix("v1.")
    return version


def directives(part: Part, version: str, upstream: dict) -> list[str]:
    flags = []
    for replace in upstream.get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        if new["Path"].startswith(("./", "../")):
            target = f"{old['Path']}@{sibling_version(part, version)}"
        else:
            target = f"{new['Path']}@{new['Version']}"
        source = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        flags.append(f"-replace={source}={target}")
    for exclude in upstream.get("Exclude") or []:
        flags.append(f"-exclude={exclude['Path']}@{exclude['Version']}")
    for godebug in upstream.get("Godebug") or []:
        flags.append(f"-godebug={godebug['Key']}={godebug['Value']}")
    return flags


def write_wrapper(part: Part, version: str, scratch: Path) -> Path:
    upstream = upstream_gomod(part, version, scratch)
    folder = HERE / "modules" / part.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    go("mod", "init", f"releasegate.dev/cluster/{part.name}", cwd=folder)
    go("mod", "edit", f"-go={upstream['Go']}", f"-require={part.module}@{version}", cwd=folder)
    copied = directives(part, version, upstream)
    if copied:
        go("mod", "edit", *copied, cwd=folder)
    go("mod", "edit", *(f"-tool={tool}" for tool in part.tools), cwd=folder)
    go("mod", "tidy", cwd=folder, part=part)
    return folder


def main(names: list[str]) -> None:
    versions = read_versions()
    chosen = [part for part in PARTS if not names or part.name in names]
    with tempfile.TemporaryDirectory() as scratch:
        for part in chosen:
            folder = write_wrapper(part, versions[part.version_key], Path(scratch))
            print(f"{part.name} {versions[part.version_key]}: {folder.relative_to(HERE.parent)}/go.mod")


if __name__ == "__main__":
    main(sys.argv[1:])
