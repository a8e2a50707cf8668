"""What an environment's deploy needs of the cluster, asked of the API server before any change.

Layer: pure rules (``needed``) over one cluster call per permission (``missing``), used by the
pre-flight of ``check`` and ``deploy``. Each permission is one SelfSubjectAccessReview: the
API server answers with the identity's real authorization (RBAC, or EKS access entries), so a
Role that lacks a verb is refused (exit 3, every missing verb named) before the first write,
rather than failing half-way, e.g. every POST smoke check answering 403 after the rollout.

The list is the documented Role (docs/eks.md), narrowed to what this environment uses: the proxied smoke
checks only with ``smoke:`` (``create`` only for checks that do not GET), ``pods/proxy`` only
with ``each_pod``, a canary's route kind, and an in-cluster Prometheus in its own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from releasegate.core.errors import Refused

if TYPE_CHECKING:
    from releasegate.core.config import Environment
    from releasegate.kube.api import Cluster

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
REVIEWS_AT_ONCE = 10  # the Kubernetes client's connection pool holds 10 (5 per core on 2 cores)
# A proxied request is authorized by its method, as the API server's requestinfo maps it.
PROXY_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
ROUTE_KINDS = {
    "gateway": ("gateway.networking.k8s.io", "httproutes"),
    "istio": ("networking.istio.io", "virtualservices"),
}


@dataclass(frozen=True, order=True)
class Permission:
    verb: str
    resource: str  # plural, with its subresource after a slash: services/proxy
    group: str = ""
    namespace: str = ""  # "" : the environment's namespace

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource}{'.' + self.group if self.group else ''}{where}"


def _all(group: str, resource: str, *verbs: str) -> list[Permission]:
    return [Permission(verb, resource, group) for verb in verbs]


# Every deploy: follow the rollout and say why it failed, apply (kubectl apply: get, create,
# patch; server-side apply: get, patch) and retire objects, keep the ledger and hold the lock,
# and prune the ApplySet's members a good release no longer renders (list them, delete them).
ALWAYS = [
    *_all("", "pods", "list", "watch"),
    *_all("", "pods/log", "get"),
    *_all("", "events", "list"),
    *_all("discovery.k8s.io", "endpointslices", "list"),
    *_all("", "services", "get", "list", "create", "patch", "delete"),  # delete: <app>-preview, pruning
    *_all("", "serviceaccounts", "get", "list", "create", "patch", "delete"),
    *_all("apps", "deployments", "get", "list", "watch", "create", "patch", "delete"),
    *_all("autoscaling", "horizontalpodautoscalers", "get", "list", "create", "patch", "delete"),
    *_all("policy", "poddisruptionbudgets", "get", "list", "create", "patch", "delete"),
    *_all("", "configmaps", "get", "list", "create", "update", "delete"),
    *_all("coordination.k8s.io", "leases", "get", "create", "update", "delete"),
]


def needed(env: Environment) -> list[Permission]:
    """Pure: every permission a deploy of ``env`` uses, in a stable order."""
    wanted = list(ALWAYS)
    if env.smoke is not None:
        verbs = {"get"} | {PROXY_VERBS.get(check.method.upper(), "create") for check in env.smoke.checks}
        resource = "pods/proxy" if env.smoke.each_pod else "services/proxy"
        wanted += [Permission(verb, resource) for verb in sorted(verbs)]
    if env.compare is not None:  # the same requests to both Services, through the proxy
        wanted.append(Permission(PROXY_VERBS.get(env.compare.method, "create"), "services/proxy"))
    strategy = env.strategy
    if strategy.type == "canary" and strategy.traffic in ROUTE_KINDS:
        group, plural = ROUTE_KINDS[strategy.traffic]
        wanted += _all(group, plural, "get", "patch")
    if strategy.analysis is not None and strategy.analysis.prometheus.service is not None:
        namespace = strategy.analysis.prometheus.service.partition("/")[0]
        wanted.append(
            Permission("get", "services/proxy", "", "" if namespace == env.namespace else namespace)
        )
    return list(dict.fromkeys(wanted))


def missing(cluster: Cluster, namespace: str, permissions: list[Permission]) -> list[Permission]:
    """The permissions the API server says this identity lacks (one review each, a few at a
    time: three dozen round trips to EKS one after another would cost a second)."""
    from concurrent.futures import ThreadPoolExecutor  # here: `--help` need not import it

    with ThreadPoolExecutor(max_workers=REVIEWS_AT_ONCE) as pool:
        allowed = list(pool.map(lambda p: _allowed(cluster, namespace, p), permissions))
    return [p for p, ok in zip(permissions, allowed, strict=True) if not ok]


def require(cluster: Cluster, env: Environment, lacking: list[Permission] | None = None) -> int:
    """Refuse (exit 3) naming every missing permission; the number checked when none is.
    ``lacking``: the reviews' answer when they were asked already."""
    wanted = needed(env)
    if lacking is None:
        lacking = missing(cluster, env.namespace, wanted)
    if lacking:
        names = ", ".join(str(p) for p in lacking)
        raise Refused(
            f"the kube-context may not do what a deploy to {env.name} needs: {names}",
            "grant them (the Role in docs/eks.md lists every one), then deploy again",
        )
    return len(wanted)


def _allowed(cluster: Cluster, namespace: str, permission: Permission) -> bool:
    resource, _, subresource = permission.resource.partition("/")
    attributes = {"namespace": permission.namespace or namespace, "verb": permission.verb,
                  "group": permission.group, "resource": resource, "subresource": subresource}  # fmt: skip
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": attributes}}  # fmt: skip
    answer = cluster.call("POST", REVIEWS, body=review, retry=True)
    return bool((answer.get("status") or {}).get("allowed"))
