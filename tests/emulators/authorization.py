"""The API server's authorization, as the tests script it: what the identity may not do.

``forbidden`` holds the permissions the identity lacks, as (verb, resource, group), a
subresource written ``services/proxy``. Each request is mapped to its verb and resource as the
API server's requestinfo does (a GET of one object is ``get``, of a collection ``list``, or
``watch`` with ``watch=true``; POST ``create``, PUT ``update``, PATCH ``patch``, DELETE
``delete``; a proxied request by its own method, so a POST through ``services/proxy`` is
``create``) and refused with 403 Forbidden, worded as RBAC words it. SelfSubjectAccessReview
answers from the same set, as the real one answers from the same authorizer.
"""

from __future__ import annotations

import re
from typing import Any

from .http import Request, Response

REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "HEAD": "get"}
PROXY = re.compile(
    r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>services|pods)/(?P<name>[^/]+)/proxy(?:/.*)?"
)
OBJECTS = re.compile(
    r"/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?"
)


class Authorizer:
    def __init__(self, user: str = "emulator") -> None:
        self.user = user
        self.forbidden: set[tuple[str, str, str]] = set()
        self.reviews: list[dict[str, Any]] = []  # every SelfSubjectAccessReview's attributes

    def review(self, body: dict[str, Any]) -> Response:
        attributes = (body.get("spec") or {}).get("resourceAttributes") or {}
        self.reviews.append(attributes)
        resource = attributes.get("resource", "")
        if attributes.get("subresource"):
            resource += "/" + attributes["subresource"]
        allowed = (attributes.get("verb", ""), resource, attributes.get("group", "")) not in self.forbidden
        status = {"allowed": allowed, **({} if allowed else {"reason": ""})}
        return Response(201, {**body, "status": status})

    def refusal(self, request: Request) -> Response | None:
        """The 403 the API server answers ``request`` with, or None when it is allowed."""
        asked = requested(request)
        if asked is None or asked[:3] not in self.forbidden:
            return None
        verb, resource, group, namespace, name = asked
        plural = resource.partition("/")[0]
        subject = f'{plural} "{name}"' if name else plural
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        message = (
            f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" '
            f'in API group "{group}"{where}'
        )
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "Forbidden", "code": 403}  # fmt: skip
        return Response(403, body)


def requested(request: Request) -> tuple[str, str, str, str, str] | None:
    """(verb, resource, group, namespace, name) of a request, as requestinfo reads it."""
    if found := PROXY.fullmatch(request.path):
        verb = VERBS.get(request.method, "get")
        return verb, f"{found['plural']}/proxy", "", found["ns"], found["name"].partition(":")[0]
    found = OBJECTS.fullmatch(request.path)
    if found is None:
        return None
    name = found["name"] or ""
    if request.method == "GET":
        verb = "get" if name else "watch" if request.query.get("watch") in ("true", "1") else "list"
    else:
        verb = VERBS.get(request.method, request.method.lower())
    resource = found["plural"] + (f"/{found['sub']}" if found["sub"] else "")
    return verb, resource, found["group"] or "", found["ns"] or "", name
