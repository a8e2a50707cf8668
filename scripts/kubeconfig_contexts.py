"""Write the kubeconfig a deploy job needs (the deploy-tools action runs this): one context for
an environment with one cluster, as `aws eks update-kubeconfig` writes it; a context per cluster,
named as its `kube_context`, for an environment with `clusters:` (the EKS cluster of that name in
each cluster's `aws_region`).

    EKS_CLUSTER_NAME=model-api AWS_REGION=eu-west-1 RELEASEGATE_ENV=prod python scripts/kubeconfig_contexts.py

The `aws` CLI is run with an argument list, never through a shell: the names come from files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from releasegate.core.config import load_environment, load_project
from releasegate.core.errors import ReleasegateError


def commands(root: Path, env_name: str, eks_cluster: str, region: str) -> list[list[str]]:
    """The `aws eks update-kubeconfig` calls for ``env_name`` (every one when it is empty)."""
    single = [["aws", "eks", "update-kubeconfig", "--name", eks_cluster, "--region", region]]
    if not env_name:
        return single
    env = load_environment(load_project(root), env_name)
    if not env.clusters:
        return single
    return [
        ["aws", "eks", "update-kubeconfig", "--name", eks_cluster, "--region", c.aws_region,
         "--alias", c.kube_context]
        for c in env.clusters
    ]  # fmt: skip


def main() -> int:
    try:
        planned = commands(
            Path.cwd(),
            os.environ.get("RELEASEGATE_ENV", ""),
            os.environ["EKS_CLUSTER_NAME"],
            os.environ["AWS_REGION"],
        )
    except ReleasegateError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    for argv in planned:
        print(" ".join(argv), flush=True)
        subprocess.run(argv, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
