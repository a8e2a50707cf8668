"""Signing a query to Amazon Managed Service for Prometheus (SigV4, service ``aps``) with
boto3's credential chain, for the workspace's own region.

Layer: adapter (AWS); imports only core.
"""

from __future__ import annotations

import re
import urllib.parse

from releasegate.core.errors import NeedsAttention

AMP_HOST = re.compile(r"aps-workspaces(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")


def signing_region(url: str, default: str) -> str:
    """The region a query to Amazon Managed Prometheus is signed for: the workspace's own, from
    its URL (``aps-workspaces.<region>.amazonaws.com``), else the environment's region. A
    workspace in another region than the cluster refuses a signature scoped to the cluster's."""
    found = AMP_HOST.search(urllib.parse.urlsplit(url).hostname or "")
    return found["region"] if found else default


def signed_headers(url: str, body: bytes, headers: dict[str, str], region: str) -> dict[str, str]:
    """SigV4 headers for an Amazon Managed Prometheus query, from boto3's credential chain."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise NeedsAttention(
            "no AWS credentials to sign the Prometheus query (sigv4: true)",
            "give the job AWS credentials that may call aps:QueryMetrics",
        )
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "aps", region).add_auth(request)
    return dict(request.headers.items())
