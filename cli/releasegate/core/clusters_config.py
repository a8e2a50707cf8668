"""``clusters:`` and ``waves:`` in an environment file: one environment, several clusters,
released to in waves (``commands/waves.py``).

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from releasegate.core.config_reader import DNS_LABEL, Reader
from releasegate.core.errors import BadInput

CLUSTER_KEYS = ("name", "kube_context", "aws_region", "wave")
WAVES_KEYS = ("max_parallel", "bake", "on_failure")
# rollback: every cluster the deploy changed is put back; halt: only the failed wave's.
ON_FAILURE = ("rollback", "halt")


@dataclass(frozen=True)
class ClusterTarget:
    name: str  # a DNS label: output, ledger, GitHub deployments (<env>/<name>)
    kube_context: str  # a context of KUBECONFIG
    aws_region: str  # whose ECR the cluster's nodes pull from
    wave: int  # 1, 2, …: waves go in ascending order


@dataclass(frozen=True)
class Waves:
    max_parallel: int = 0  # clusters of one wave deployed at once (0: the whole wave)
    bake: float = 0.0  # seconds a finished wave keeps passing its smoke checks before the next
    on_failure: str = ON_FAILURE[0]


def read_clusters(reader: Reader, default_region: str, region_pattern: Any) -> tuple[ClusterTarget, ...]:
    """The environment's clusters (empty: the one ``kube_context``, today's behaviour)."""
    if "clusters" not in reader.data:
        return ()
    items = reader.data["clusters"]
    if not isinstance(items, list) or not items:
        raise reader.fail("clusters", "a list of clusters, each with name, kube_context and wave")
    targets = tuple(
        _cluster(reader.path, item, n, default_region, region_pattern) for n, item in enumerate(items)
    )
    seen: set[str] = set()
    for n, target in enumerate(targets):
        if target.name in seen:
            raise reader.fail(f"clusters[{n}].name", f"unique ({target.name} is named twice)")
        seen.add(target.name)
    if reader.data.get("kube_context") is not None:
        raise reader.fail("kube_context", "left out when clusters: names each cluster's kube_context")
    return targets


def _cluster(path: Path, item: Any, index: int, default_region: str, region_pattern: Any) -> ClusterTarget:
    entry = Reader(path, item if isinstance(item, dict) else {}, prefix=f"clusters[{index}].")
    if not isinstance(item, dict):
        raise entry.fail("", "a mapping with name, kube_context and wave")
    entry.only(CLUSTER_KEYS)
    region = entry.data.get("aws_region", default_region)
    if not isinstance(region, str) or not region_pattern.fullmatch(region):
        raise entry.fail("aws_region", "an AWS region such as eu-west-1")
    context = entry.data.get("kube_context")
    if not isinstance(context, str) or not context.strip():
        raise entry.fail("kube_context", "a context of KUBECONFIG")
    wave = entry.positive("wave", default=None)
    if wave is None:
        raise entry.fail("wave", "a whole number above 0")
    return ClusterTarget(
        name=entry.matching("name", DNS_LABEL, "a DNS label such as eu-west-1"),
        kube_context=context,
        aws_region=region,
        wave=wave,
    )


def read_waves(reader: Reader, clusters: tuple[ClusterTarget, ...]) -> Waves:
    if "waves" not in reader.data:
        return Waves()
    if not clusters:
        raise reader.fail("waves", "left out without clusters: (one cluster has no waves)")
    section = Reader(reader.path, reader.mapping("waves"), prefix="waves.")
    section.only(WAVES_KEYS)
    return Waves(
        max_parallel=section.positive("max_parallel", default=0, zero=True),
        bake=section.seconds("bake", 0.0),
        on_failure=section.one_of("on_failure", ON_FAILURE),
    )


def require_contexts(env_file: Path, clusters: tuple[ClusterTarget, ...]) -> None:
    """Every cluster's kube_context is a context of KUBECONFIG (exit 2 naming the one that is
    not): checked by the commands that talk to the clusters, not at every load (`render` and the
    event step run where no kubeconfig is written yet)."""
    if not clusters:
        return
    known = kubeconfig_contexts()
    for n, target in enumerate(clusters):
        if target.kube_context not in known:
            raise BadInput(
                f"{env_file}: clusters[{n}].kube_context {target.kube_context} is not a context "
                "of KUBECONFIG",
                f"its contexts are: {', '.join(sorted(known)) or '(none)'}; "
                f"`aws eks update-kubeconfig --alias {target.kube_context}` adds one",
            )


def kubeconfig_contexts() -> set[str]:
    """The context names of every file KUBECONFIG lists (default: ~/.kube/config), as kubectl
    merges them."""
    listed = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    names: set[str] = set()
    for part in filter(None, listed.split(os.pathsep)):
        try:
            data = yaml.safe_load(Path(part).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue  # kubectl skips a missing file too; a context it lacks is named above
        for context in data.get("contexts") or [] if isinstance(data, dict) else []:
            if isinstance(context, dict) and isinstance(context.get("name"), str):
                names.add(context["name"])
    return names
