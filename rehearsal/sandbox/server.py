"""A simulated fleet served on 127.0.0.1: one AWS endpoint and one Kubernetes API per cluster.

`Sandbox(scenario).start()` seeds the EKS simulator, moto's EC2 and one KubeStore per cluster from
the scenario (with the same `ClusterSeeder` a rehearsal uses), then serves them to any tool:
`environment()` is what to export, `kubeconfig()` a kubeconfig with one context per cluster.
Time is the wall clock, offset to the scenario's `now` and sped up `speed` times, so an EKS update
finishes after its simulated duration. `stop()` closes every socket and joins every thread.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import heapq
import itertools
import json
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from rehearsal.engine import LAMBDA_ACCESS_KEY, LAMBDA_SECRET_KEY
from rehearsal.scenario import Scenario

HOST = "127.0.0.1"
# The sandbox user's test keys: they may write to the fake Kubernetes APIs. The product's handlers
# keep their own (read-only) identity, LAMBDA_ACCESS_KEY.
SANDBOX_ACCESS_KEY = "AKIASANDBOXUSER00000"
SANDBOX_SECRET_KEY = "sandbox-user-secret"
TOKEN_REFRESH_SECONDS = 300  # the fake API accepts a token for 15 minutes from its signing


class WallClock:
    """Simulated time that runs with the wall clock: scenario `now` + real elapsed time times `speed`."""

    def __init__(self, start: dt.datetime, speed: float = 60.0) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
        self.start = start
        self.speed = float(speed)
        self._t0: float | None = None  # time stands still while the sandbox is being seeded
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def run(self) -> None:
        """Let time run from the scenario's `now`."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None else (time.monotonic() - self._t0) * self.speed

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.elapsed())

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Run `callback` at the first `run_due` after `seconds` of simulated time."""
        with self._lock:
            heapq.heappush(self._timers, (self.elapsed() + max(0.0, seconds), next(self._seq), callback))

    def run_due(self) -> None:
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > self.elapsed():
                    return
                _, _, callback = heapq.heappop(self._timers)
            callback()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Listener:
    """A threaded WSGI server on 127.0.0.1 that can close its open connections and join its threads."""

    def __init__(self, name: str, app: Any, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self.name = name
        self.server = _TrackingServer(HOST, port, app, handler=_QuietHandler, ssl_context=ssl_context)
        self.scheme = "https" if ssl_context is not None else "http"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.close_connections()
        self.server.server_close()


class _TrackingServer(ThreadedWSGIServer):
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), name="sandbox-request", daemon=True
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def close_connections(self) -> None:
        """End kept-alive connections (their handler threads wait for a next request) and join."""
        with self._connections_lock:
            open_now = dict(self._connections)
        for connection in open_now.values():
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in open_now:
            thread.join(timeout=10)


class _Tls:
    """A CA made for this sandbox and a certificate for 127.0.0.1 signed by it."""

    def __init__(self, workdir: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "autopatch sandbox CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        import ipaddress

        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self.ca_path = workdir / "ca.crt"
        self.ca_path.write_bytes(self.ca_pem)
        cert_path, key_path = workdir / "server.crt", workdir / "server.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)

    @property
    def ca_data(self) -> str:
        """As EKS returns it in `certificateAuthority.data`: the PEM, base64-encoded."""
        return base64.b64encode(self.ca_pem).decode("ascii")


class Sandbox:
    def __init__(
        self,
        scenario: Scenario,
        *,
        port_aws: int = 0,
        port_k8s: int = 0,
        tls: bool = False,
        speed: float = 60.0,
    ) -> None:
        self.scenario = scenario
        self.port_aws = port_aws
        self.port_k8s = port_k8s
        self.tls = tls
        self.speed = speed
        self.region = scenario.region
        self.clock = WallClock(scenario.now, speed)
        self.simulator: Any = None
        self.aws: _Listener | None = None
        self.kube: dict[str, _Listener] = {}
        self.kube_servers: dict[str, Any] = {}  # cluster -> FakeKubeApiServer (its app and store)
        self.started_seconds = 0.0  # how long start() took
        self._tls: _Tls | None = None
        self._workdir: Path | None = None
        self._tokens: dict[str, str] = {}  # cluster -> the kubeconfig's token
        self._fresh: dict[str, tuple[float, str]] = {}  # cluster -> (made at, fresh token)
        self._token_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self.aws is not None:
            raise RuntimeError("the sandbox is already running")
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        from moto.core.base_backend import BackendDict

        from rehearsal.eks.simulator import EksSimulator
        from rehearsal.kube.server import FakeKubeApiServer
        from rehearsal.kube.store import KubeStore
        from rehearsal.run import ClusterSeeder
        from rehearsal.sandbox.aws_front import AwsFront

        BackendDict.reset()  # moto's backends are per process: start from nothing
        self._workdir = Path(tempfile.mkdtemp(prefix="autopatch-sandbox-"))
        if self.tls:
            self._tls = _Tls(self._workdir)
        context = self._tls.context if self._tls else None
        self.simulator = EksSimulator(self.clock)
        self.aws = _Listener(
            "sandbox-aws",
            AwsFront(self.simulator, region=self.region, before_request=self.tick),
            self.port_aws,
            None,
        )
        self.aws.start()
        session = self._user_session()
        for index, seed in enumerate(self.scenario.clusters):
            store = KubeStore(seed.name, seed.version)
            store.clock_now = lambda: self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            fake = FakeKubeApiServer(
                store,
                cluster_name=seed.name,
                credentials={SANDBOX_ACCESS_KEY: SANDBOX_SECRET_KEY, LAMBDA_ACCESS_KEY: LAMBDA_SECRET_KEY},
                readonly_key_ids={LAMBDA_ACCESS_KEY},
            )
            port = self.port_k8s + index if self.port_k8s else 0
            listener = _Listener(f"sandbox-kube-{seed.name}", self._kube_app(seed.name, fake), port, context)
            listener.start()
            self.kube[seed.name] = listener
            self.kube_servers[seed.name] = fake
            self._tokens[seed.name] = self._token(seed.name, session)

        ec2_clients: dict[str, Any] = {}

        def ec2(region: str) -> Any:
            if region not in ec2_clients:
                endpoint = self.aws_endpoint
                ec2_clients[region] = session.client("ec2", region_name=region, endpoint_url=endpoint)
            return ec2_clients[region]

        seeder = ClusterSeeder(self.scenario, ec2=ec2, call_later=self.clock.call_later)
        for seed in self.scenario.clusters:
            seeder.seed_cluster(
                self.simulator,
                self.kube_servers[seed.name].store,
                seed,
                self.kube[seed.name].url,
                ca_data=self._tls.ca_data if self._tls else None,
            )
        self.clock.run()

    def stop(self) -> None:
        for listener in [*self.kube.values(), *([self.aws] if self.aws else [])]:
            listener.stop()
        self.kube.clear()
        self.aws = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- time ------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Bring the simulation up to now: due pod changes, then due updates and node events."""
        self.clock.run_due()
        if self.simulator is not None:
            self.simulator.finish_due_updates()

    # ---- what tools are given --------------------------------------------------------------------
    @property
    def aws_endpoint(self) -> str:
        if self.aws is None:
            raise RuntimeError("the sandbox is not running")
        return self.aws.url

    def listeners(self) -> list[_Listener]:
        return [*([self.aws] if self.aws else []), *self.kube.values()]

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def kubeconfig(self) -> str:
        import yaml

        clusters, contexts, users = [], [], []
        for name, listener in self.kube.items():
            cluster: dict[str, Any] = {"server": listener.url}
            if self._tls is not None:
                cluster["certificate-authority-data"] = self._tls.ca_data
            clusters.append({"name": name, "cluster": cluster})
            users.append({"name": f"sandbox-{name}", "user": {"token": self._tokens[name]}})
            contexts.append({"name": name, "context": {"cluster": name, "user": f"sandbox-{name}"}})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "contexts": contexts,
            "users": users,
            "current-context": contexts[0]["name"] if contexts else "",
            "preferences": {},
        }
        return str(yaml.safe_dump(config, sort_keys=False))

    def kube_endpoints(self) -> dict[str, str]:
        return {name: listener.url for name, listener in self.kube.items()}

    def write_files(self, env_file: Path, kubeconfig_file: Path) -> None:
        """The environment (KEY=value lines, for `set -a; . FILE` or docker --env-file) and the
        kubeconfig (readable by its owner only: it holds the tokens)."""
        env_file.write_text("\n".join(self.environment_lines()) + "\n")
        kubeconfig_file.touch(mode=0o600)
        kubeconfig_file.write_text(self.kubeconfig())

    def environment_lines(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.environment().items()]

    # ---- the simulated state ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Versions, add-ons (with configuration and the customer-edited fields as the store holds
        them now), node groups, nodes and pods of every cluster: JSON-able."""
        from autopatch.fields import format_path

        self.tick()
        sim = self.simulator
        clusters = {}
        for name in sim.cluster_names():
            store = sim.store_of(name)
            control = sim.cluster_state(name)
            addons = {}
            for addon in sim.call("ListAddons", {"clusterName": name})["addons"]:
                current = sim.addon_state(name, addon)
                addons[addon] = {
                    "version": current["version"],
                    "status": current["status"],
                    "configurationValues": current["configuration_values"],
                    "updates": current["updates"],
                }
            edits = [
                {
                    "object": f"{edit.kind} {edit.namespace}/{edit.name}",
                    "path": format_path(edit.path),
                    "manager": edit.manager,
                    "edited": edit.value,
                    "now": store.value(edit.kind, edit.namespace, edit.name, edit.path),
                }
                for edit in sim.customer_edits
                if edit.cluster == name
            ]
            groups = {
                group: sim.nodegroup_state(name, group)
                for group in sim.call("ListNodegroups", {"clusterName": name})["nodegroups"]
            }
            clusters[name] = {
                "version": control["version"],
                "status": control["status"],
                "platformVersion": control["platformVersion"],
                "updates": control["updates"],
                "addons": addons,
                "customerEdits": edits,
                "nodegroups": groups,
                "nodes": [_node_summary(node) for node in store.list("Node")],
                "pods": [_pod_summary(pod) for pod in store.list("Pod")],
            }
        return json.loads(
            json.dumps(
                {"simulatedNow": self.clock.now().isoformat(), "clusters": clusters},
                default=_jsonable,
            )
        )

    # ---- Kubernetes authentication --------------------------------------------------------------
    def _user_session(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=SANDBOX_ACCESS_KEY,
            aws_secret_access_key=SANDBOX_SECRET_KEY,
            region_name=self.region,
        )

    @staticmethod
    def _token(cluster: str, session: Any) -> str:
        from autopatch.clients.k8s_token import get_token

        return get_token(cluster, session=session)

    def _kube_app(self, cluster: str, fake: Any) -> Callable[..., Iterable[bytes]]:
        """The fake API, with the kubeconfig's token honoured for the whole session: EKS tokens live
        15 minutes, so a request bearing it is passed on with a fresh one for the same user."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.tick()
            if environ.get("HTTP_AUTHORIZATION") == f"Bearer {self._tokens.get(cluster)}":
                environ["HTTP_AUTHORIZATION"] = f"Bearer {self._fresh_token(cluster)}"
            result: Iterable[bytes] = fake._wsgi_app(environ, start_response)
            return result

        return app

    def _fresh_token(self, cluster: str) -> str:
        with self._token_lock:
            made, token = self._fresh.get(cluster, (0.0, ""))
            if time.monotonic() - made > TOKEN_REFRESH_SECONDS:
                made, token = time.monotonic(), self._token(cluster, self._user_session())
                self._fresh[cluster] = (made, token)
            return token


def _node_summary(node: dict[str, Any]) -> dict[str, Any]:
    status = node.get("status", {})
    return {
        "name": node["metadata"]["name"],
        "nodegroup": node["metadata"].get("labels", {}).get("eks.amazonaws.com/nodegroup"),
        "kubeletVersion": status.get("nodeInfo", {}).get("kubeletVersion"),
        "ready": any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
        ),
        "unschedulable": bool(node.get("spec", {}).get("unschedulable", False)),
    }


def _pod_summary(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": pod["metadata"].get("namespace"),
        "name": pod["metadata"]["name"],
        "node": pod.get("spec", {}).get("nodeName"),
        "phase": pod.get("status", {}).get("phase"),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
