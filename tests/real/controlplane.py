"""A real Kubernetes control plane on 127.0.0.1: etcd, two kube-apiservers (RBAC, token
identities) behind a balancer, kube-controller-manager, kube-scheduler, and kwok playing the
kubelets of fake Nodes.

Built from the Go module proxy by `cluster/build.sh`; nothing here is an emulator. Two identities
authenticate with bearer tokens: `admin` (system:masters, for the tests' own set-up and checks)
and `deployer` (group `releasegate-deployers`: it may do exactly what the README's Role grants).
The API servers' proxy traffic to pods and nodes leaves through their egress selector to
`podnet`, a local HTTP CONNECT proxy that answers as the pod with that IP, so nothing is ever
sent to a pod address.

    python -m tests.real.controlplane      # start it by hand; prints KUBECONFIG, Ctrl-C stops it
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .balancer import Balancer, readyz_check
from .certificates import write_certificates

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("RELEASEGATE_REAL_CACHE", Path.home() / ".cache" / "releasegate" / "real"))
NODE_NAME = "kwok-node-0"
NODE_IP = "10.0.1.23"  # never dialled: the egress proxy answers for every cluster address
POD_CIDR = "10.244.0.1/16"
SERVICE_CIDR = "10.96.0.0/16"
START_SECONDS = 90
CONTROLLERS = ",".join(
    (
        "deployment-controller",
        "replicaset-controller",
        "endpoints-controller",
        "endpointslice-controller",
        "garbage-collector-controller",
        "namespace-controller",
        "serviceaccount-controller",
        "horizontal-pod-autoscaler-controller",
        "disruption-controller",
        "node-lifecycle-controller",  # lifts the not-ready taint once kwok reports the Node Ready
    )
)


# The API servers record every request of the deployer identity (who, verb, resource, answer),
# so a test can compare what releasegate used with the Role the README documents.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {"level": "Metadata", "userGroups": ["releasegate-deployers"]},
        {"level": "None"},
    ],
}


class NotBuilt(RuntimeError):
    """The real parts are not on this machine: `bash cluster/build.sh` builds them."""


def binaries() -> Path:
    """The folder holding every real binary: RELEASEGATE_REAL_BIN, or the build cache."""
    folder = Path(os.environ.get("RELEASEGATE_REAL_BIN", CACHE / "bin"))
    wanted = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"]
    missing = [name for name in wanted if not (folder / name).exists()]
    if missing:
        raise NotBuilt(f"{', '.join(missing)} missing in {folder}: run `bash cluster/build.sh`")
    return folder


def crd_files() -> list[Path]:
    found = sorted((CACHE / "crds").glob("*.yaml"))
    if not found:
        raise NotBuilt(f"no CRDs in {CACHE / 'crds'}: run `bash cluster/build.sh crds`")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Identity:
    user: str
    groups: str
    token: str
    kubeconfig: Path


@dataclass
class ControlPlane:
    workdir: Path
    bin: Path = field(default_factory=binaries)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    port: int = 0
    started_in: float = 0.0

    # -- start and stop ---------------------------------------------------------------------

    def start(self, egress_socket: Path) -> ControlPlane:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.port = free_port()
        write_certificates(self.workdir, [NODE_NAME], NODE_IP)
        self.admin = self._identity("admin", "system:masters")
        self.deployer = self._identity("deployer", "releasegate-deployers")
        self._write_token_file()
        try:
            self._start_etcd()
            self._start_apiservers(egress_socket)
            self._wait_ready()
            self._start("kube-controller-manager", self._controller_manager_args())
            self._start("kube-scheduler", self._scheduler_args())
            self.kubectl("apply", "--server-side", *(a for f in crd_files() for a in ("-f", str(f))))
            self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
            self._wait_discovered("httproutes", "virtualservices", "stages")
            self._start("kwok", self._kwok_args())
            self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(node(NODE_NAME)))
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        if getattr(self, "balancer", None) is not None:
            self.balancer.stop()
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)

    def restart_apiserver(self, which: int = 0, grace: float = 3) -> float:
        """Stop one kube-apiserver and start it again; returns how long it was away.

        On SIGTERM it stops listening at once but keeps open watches up to 60 s before it exits;
        after ``grace`` seconds it is killed, ending every watch it served as a crash or a lost
        node would. The balancer sends new connections to the other one meanwhile.
        """
        began = time.monotonic()
        name = f"kube-apiserver-{which}"
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        self._start(name, self._apiserver_args(self.backends[which]), binary="kube-apiserver")
        self._wait_ready()
        return time.monotonic() - began

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def audit_log(self, port: int) -> Path:
        return self.logs / f"audit-{port}.jsonl"

    def deployer_requests(self) -> list[dict[str, Any]]:
        """Every request the deployer identity made, as the API servers' audit logs have it."""
        events = []
        for port in self.backends:
            path = self.audit_log(port)
            if path.exists():
                events += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return sorted(events, key=lambda e: e["requestReceivedTimestamp"])

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    # -- talking to it as admin ---------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, identity: Identity | None = None) -> str:
        who = identity or self.admin
        done = subprocess.run(
            [str(self.bin / "kubectl"), "--kubeconfig", str(who.kubeconfig),
             f"--cache-dir={self.workdir / 'kubectl-cache'}", *args],
            input=stdin, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def _wait_discovered(self, *resources: str) -> None:
        """Until API discovery lists the new CRDs' resources (a moment after Established);
        kubectl's discovery cache is dropped so that it does not keep the list from before."""
        deadline = time.monotonic() + START_SECONDS
        while True:
            shutil.rmtree(self.workdir / "kubectl-cache", ignore_errors=True)
            listed = set(self.kubectl("api-resources", "-o", "name").split())
            if all(any(name.startswith(f"{r}.") for name in listed) for r in resources):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"discovery never listed {resources}")
            time.sleep(0.3)

    def get(self, path: str) -> Any:
        """GET an API path as admin; None on 404. Each thread keeps its connection open: a new
        TLS handshake for every read cost ~50 ms on two busy cores, and the pod network reads
        the API server on every connection the API server proxies to a pod."""
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request("GET", path, headers={"Authorization": f"Bearer {self.admin.token}"})
                answer = connection.getresponse()
                body = answer.read()
                break
            except (http.client.HTTPException, OSError):
                connection.close()  # closed by the server while idle: once more, on a new one
                self._connections.connection = None
                if attempt:
                    raise
        if answer.status == 404:
            return None
        if answer.status >= 400:
            raise urllib.error.HTTPError(self.url + path, answer.status, answer.reason, answer.headers, None)
        return json.loads(body)

    def _connection(self) -> http.client.HTTPSConnection:
        connection = getattr(self._connections, "connection", None)
        if connection is None:
            host = urllib.parse.urlsplit(self.url)
            connection = http.client.HTTPSConnection(
                host.hostname or "", host.port, context=self.tls, timeout=30
            )
            self._connections.connection = connection
        return connection

    @functools.cached_property
    def _connections(self) -> threading.local:
        return threading.local()

    @functools.cached_property
    def tls(self) -> ssl.SSLContext:
        """One context for every request (loading the CA again each time cost ~10 ms a request)."""
        return ssl.create_default_context(cafile=str(self.workdir / "ca.crt"))

    # -- the parts --------------------------------------------------------------------------

    def _start(self, name: str, args: list[str], binary: str | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(self.bin / (binary or name)), *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._start(
            "etcd",
            [
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a throw-away test cluster: speed over durability
                "--log-level=warn",
            ],
        )

    def _start_apiservers(self, egress_socket: Path) -> None:
        """Two API servers on one etcd, behind the balancer on ``self.port``, as on EKS."""
        (self.workdir / "egress.yaml").write_text(yaml.safe_dump(egress_configuration(egress_socket)))
        (self.workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        self.backends = [free_port(), free_port()]
        for which, port in enumerate(self.backends):
            self._start(f"kube-apiserver-{which}", self._apiserver_args(port), binary="kube-apiserver")
        check = readyz_check(self.admin.token, self.tls)
        self.balancer = Balancer(self.port, check).start(self.backends)

    def _apiserver_args(self, port: int) -> list[str]:
        w = self.workdir
        return [
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={w / 'apiserver-certs'}",
            f"--tls-cert-file={w / 'apiserver.crt'}",
            f"--tls-private-key-file={w / 'apiserver.key'}",
            f"--token-auth-file={w / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--kubelet-certificate-authority={w / 'ca.crt'}",
            "--anonymous-auth=false",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--egress-selector-config-file={w / 'egress.yaml'}",
            f"--audit-policy-file={w / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log(port)}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ]

    def _wait_ready(self) -> None:
        """Every API server ready, as the balancer sees it (/readyz)."""
        deadline = time.monotonic() + START_SECONDS
        for which, port in enumerate(self.backends):
            while not self.balancer.wait_ready(port, 0.5):
                if self.processes[f"kube-apiserver-{which}"].poll() is not None:
                    raise RuntimeError(f"kube-apiserver-{which} exited:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"kube-apiserver-{which} not ready in {START_SECONDS} s:\n{self.log_tail()}"
                    )

    def _controller_manager_args(self) -> list[str]:
        kubeconfig = str(self.admin.kubeconfig)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--controllers={CONTROLLERS}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--use-service-account-credentials=false",
            "--concurrent-deployment-syncs=5",
            "--horizontal-pod-autoscaler-sync-period=2s",
            "--v=1",
        ]

    def _scheduler_args(self) -> list[str]:
        kubeconfig = str(self.admin.kubeconfig)
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--v=1",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.admin.kubeconfig}",
            "--manage-all-nodes=true",
            "--enable-crds=Stage",
            f"--cidr={POD_CIDR}",
            f"--node-ip={NODE_IP}",
            "--node-lease-duration-seconds=40",
        ]

    # -- files --------------------------------------------------------------------------------

    def _identity(self, user: str, groups: str) -> Identity:
        token = secrets.token_urlsafe(24)
        kubeconfig = self.workdir / f"{user}.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(kubeconfig_for(self, user, token)))
        kubeconfig.chmod(0o600)
        return Identity(user, groups, token, kubeconfig)

    def _write_token_file(self) -> None:
        lines = [
            f'{who.token},{who.user},{who.user}-uid,"{who.groups}"' for who in (self.admin, self.deployer)
        ]
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def write_kubeconfig(self, path: Path, identity: Identity, context: str = "real") -> Path:
        """A kubeconfig for ``identity`` at ``path`` (what a test hands the CLI)."""
        path.write_text(yaml.safe_dump(kubeconfig_for(self, identity.user, identity.token, context)))
        path.chmod(0o600)
        return path


def kubeconfig_for(plane: ControlPlane, user: str, token: str, context: str = "real") -> dict[str, Any]:
    # The port is known only once the API server is placed; the kubeconfig is written again then.
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "real",
                "cluster": {
                    "server": f"https://127.0.0.1:{plane.port}",
                    "certificate-authority": str(plane.workdir / "ca.crt"),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "real", "user": user}}],
        "current-context": context,
    }


def egress_configuration(socket_path: Path) -> dict[str, Any]:
    """Traffic to pods, Services and nodes goes through a CONNECT proxy on a unix socket."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [
            {
                "name": "cluster",
                "connection": {
                    "proxyProtocol": "HTTPConnect",
                    "transport": {"uds": {"udsName": str(socket_path)}},
                },
            }
        ],
    }


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
    }


@contextmanager
def running(workdir: Path | None = None) -> Iterator[tuple[ControlPlane, Any]]:
    """The control plane with its pod network; both stopped at the end."""
    from .podnet import PodNetwork

    folder = workdir or Path(tempfile.mkdtemp(prefix="releasegate-real-"))
    network = PodNetwork(folder / "egress.sock").start()
    plane = ControlPlane(folder)
    try:
        plane.start(network.socket_path)
        network.attach(plane)
        yield plane, network
    finally:
        plane.stop()
        network.stop()


def main() -> None:
    with running() as (plane, network):
        del network
        print(f"control plane up in {plane.started_in:.1f} s at {plane.url}")
        print(f"export KUBECONFIG={plane.admin.kubeconfig}     # admin")
        print(f"export KUBECONFIG={plane.deployer.kubeconfig}  # deployer (the README's Role)")
        print(f"logs in {plane.logs}; Ctrl-C stops every process")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    shutil.rmtree(plane.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
