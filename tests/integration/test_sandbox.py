"""Sandbox mode: the simulated fleet served on 127.0.0.1, used through boto3 and the kubernetes client."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from rehearsal.engine import LAMBDA_ACCESS_KEY, LAMBDA_SECRET_KEY
from rehearsal.sandbox.server import HOST, Sandbox
from rehearsal.scenario import parse_scenario
from tests.e2e.conftest import COREDNS_FROM, COREDNS_TO, cluster, scenario

REPO = Path(__file__).resolve().parents[2]
RELEASE = "1.31.14-20260714"  # a published EKS-optimized AMI release for Kubernetes 1.31


def fleet() -> dict[str, Any]:
    """Two clusters; dev's CoreDNS Corefile carries the customer edit `cache 15`, and its two nodes
    are a managed node group's (whole Node objects, as the official client's models want them)."""
    dev = {
        **cluster("dev"),
        "nodes": 0,
        "nodegroups": [{"name": "workers", "releaseVersion": RELEASE, "nodes": 2}],
    }
    data = scenario(clusters=[dev, cluster("ops", addons=[])])
    data["policy"]["clusters"].append({**data["policy"]["clusters"][0], "name": "ops"})
    return data


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports that are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        try:
            held = []
            for port in range(first, first + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return first
    raise RuntimeError("no free ports")


def boto(env: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def threads_before() -> set[threading.Thread]:
    return set(threading.enumerate())


@pytest.fixture
def sandbox(threads_before: set[threading.Thread]) -> Iterator[Sandbox]:
    first = free_ports(3)
    box = Sandbox(parse_scenario(fleet()), port_aws=first, port_k8s=first + 1, speed=600)
    try:
        box.start()
        yield box
    finally:
        box.stop()


def test_tools_see_the_fleet_and_an_update_keeps_the_customer_edit(
    sandbox: Sandbox, tmp_path: Path, threads_before: set[threading.Thread]
) -> None:
    env_file, kubeconfig = tmp_path / "sandbox.env", tmp_path / "sandbox.kubeconfig"
    sandbox.write_files(env_file, kubeconfig)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert env["AWS_ENDPOINT_URL"].startswith(f"http://{HOST}:")
    eks = boto(env, "eks")

    assert eks.list_clusters()["clusters"] == ["dev", "ops"]
    versions = eks.describe_addon_versions(addonName="coredns", kubernetesVersion="1.31")["addons"][0]
    assert COREDNS_TO in [v["addonVersion"] for v in versions["addonVersions"]]
    described = eks.describe_cluster(name="ops")["cluster"]
    assert described["endpoint"] == sandbox.kube_endpoints()["ops"]
    assert described["endpoint"].endswith(f":{sandbox.port_k8s + 1}")  # the next cluster, the next port
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_cluster(name="nope")
    assert boto(env, "sts").get_caller_identity()["Account"]  # moto, behind the same endpoint
    assert boto(env, "ec2").describe_subnets()["Subnets"] is not None

    api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context="dev")
    try:
        nodes = k8s.CoreV1Api(api).list_node().items
        assert len(nodes) == 2
        config_map = k8s.CoreV1Api(api).read_namespaced_config_map("coredns", "kube-system")
        assert "cache 15" in (config_map.data or {})["Corefile"]
    finally:
        api.close()

    update = eks.update_addon(
        clusterName="dev", addonName="coredns", addonVersion=COREDNS_TO, resolveConflicts="PRESERVE"
    )["update"]
    deadline = time.monotonic() + 60
    while True:
        status = eks.describe_update(name="dev", addonName="coredns", updateId=update["id"])["update"][
            "status"
        ]
        if status != "InProgress" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "Successful"
    state = sandbox.state()
    json.dumps(state)
    dev = state["clusters"]["dev"]
    assert dev["addons"]["coredns"]["version"] == COREDNS_TO
    assert dev["customerEdits"] and all(edit["edited"] == edit["now"] for edit in dev["customerEdits"])
    assert "cache 15" in dev["customerEdits"][0]["now"]
    assert len(dev["nodes"]) == 2

    ports = [listener.address[1] for listener in sandbox.listeners()]
    sandbox.stop()
    time.sleep(0.1)
    assert set(threading.enumerate()) - threads_before == set()
    for port in ports:  # every port can be bound again
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind((HOST, port))


def listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every TCP socket of this process in the LISTEN state (Linux /proc)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            if width == 8:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                host = socket.inet_ntop(socket.AF_INET6, words)
            found.add((host, int(port, 16)))
    return found


def test_every_listening_socket_is_bound_to_loopback(threads_before: set[threading.Thread]) -> None:
    if not Path("/proc/self/fd").exists():
        pytest.skip("reads the process's sockets from /proc")
    before = listening_sockets()
    box = Sandbox(parse_scenario(fleet()))
    try:
        box.start()
        opened = listening_sockets() - before
        listeners = box.listeners()
        assert len(listeners) == 3  # the AWS endpoint and one Kubernetes API per cluster
        assert {listener.address for listener in listeners} == opened
        assert {host for host, _ in opened} == {"127.0.0.1"}
    finally:
        box.stop()
    assert listening_sockets() - before == set()


def test_the_products_identity_stays_read_only(sandbox: Sandbox, tmp_path: Path) -> None:
    from autopatch.clients.k8s_token import get_token

    product = boto3.session.Session(
        aws_access_key_id=LAMBDA_ACCESS_KEY, aws_secret_access_key=LAMBDA_SECRET_KEY, region_name="eu-west-1"
    )
    configuration = k8s.Configuration()
    configuration.host = sandbox.kube_endpoints()["dev"]
    configuration.api_key = {"authorization": f"Bearer {get_token('dev', session=product)}"}
    api = k8s.ApiClient(configuration)
    try:
        core = k8s.CoreV1Api(api)
        assert len(core.list_node().items) == 2
        with pytest.raises(k8s.ApiException) as refused:
            core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="by-the-product")))
        assert refused.value.status == 403
    finally:
        api.close()
    kubeconfig = tmp_path / "kc"
    sandbox.write_files(tmp_path / "env", kubeconfig)
    user_api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context="dev")
    try:
        k8s.CoreV1Api(user_api).create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="by-the-user"))
        )
    finally:
        user_api.close()


def test_tls_serves_https_verified_with_the_returned_ca(
    tmp_path: Path, threads_before: set[threading.Thread]
) -> None:
    box = Sandbox(parse_scenario(fleet()), tls=True)
    try:
        box.start()
        env = box.environment()
        described = boto(env, "eks").describe_cluster(name="dev")["cluster"]
        assert described["endpoint"].startswith(f"https://{HOST}:")
        ca = base64.b64decode(described["certificateAuthority"]["data"])
        assert ca.startswith(b"-----BEGIN CERTIFICATE-----")
        kubeconfig = tmp_path / "kc"
        box.write_files(tmp_path / "env", kubeconfig)
        cluster_entry = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
        assert cluster_entry["certificate-authority-data"] == described["certificateAuthority"]["data"]
        api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context="dev")
        try:
            assert api.configuration.verify_ssl
            assert len(k8s.CoreV1Api(api).list_node().items) == 2
        finally:
            api.close()
    finally:
        box.stop()
    time.sleep(0.1)
    assert set(threading.enumerate()) - threads_before == set()


def test_the_command_prints_the_environment_and_dumps_the_state_on_ctrl_c(tmp_path: Path) -> None:
    scenario_file = tmp_path / "fleet.yaml"
    scenario_file.write_text(yaml.safe_dump(fleet()))
    env_file, kubeconfig, state = tmp_path / "s.env", tmp_path / "s.kubeconfig", tmp_path / "state.json"
    command = [
        *(sys.executable, "-m", "autopatch_cli.main", "sandbox", str(scenario_file)),
        *("--env-file", str(env_file), "--kubeconfig", str(kubeconfig), "--state-out", str(state)),
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(printed)
        assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in text, text + process.stderr.read()  # type: ignore[union-attr]
        assert f"KUBECONFIG={kubeconfig}" in text
        endpoint = text.split("export AWS_ENDPOINT_URL=", 1)[1].split()[0]
        assert f"AWS_ENDPOINT_URL={endpoint}" in env_file.read_text()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "sandbox stopped" in out
    dumped = json.loads(state.read_text())
    assert dumped["clusters"]["dev"]["addons"]["coredns"]["version"] == COREDNS_FROM
    assert "cache 15" in dumped["clusters"]["dev"]["customerEdits"][0]["now"]
