"""A rehearsal: seed the simulated fleet from a scenario, run the real system, report what happened."""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopatch.fields import parse_path

from rehearsal.clock import SimClock
from rehearsal.engine import LAMBDA_ACCESS_KEY, LAMBDA_SECRET_KEY, Engine, Invocation
from rehearsal.scenario import Scenario, offset_seconds
from rehearsal.slack_sink import approval_id_of

ApproveMode = str  # auto | reject | prompt | none

QUIET_STEPS = {"Poll", "Lock"}


@dataclass
class RehearsalResult:
    scenario: Scenario
    report: dict[str, Any]
    engine: Engine
    simulator: Any
    wall_seconds: float
    ledger: list[dict[str, Any]] = field(default_factory=list)  # every ledger item at the end
    lambda_log: str = ""  # what the handlers logged and printed (their CloudWatch Logs, locally)
    report_paths: list[Path] = field(default_factory=list)

    def operations(self, **match: Any) -> list[dict[str, Any]]:
        def keep(op: dict[str, Any]) -> bool:
            return all(
                (op["component"]["name"] if k == "component" else op.get(k)) == v for k, v in match.items()
            )

        return [op for op in self.report["operations"] if keep(op)]


class Rehearsal:
    def __init__(
        self,
        scenario: Scenario,
        *,
        approve: ApproveMode | None = None,
        report_dir: Path | None = None,
        echo: Callable[[str], None] | None = None,
        prompt: Callable[[str], str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.approve = approve or scenario.approvals.mode
        self.report_dir = report_dir
        self.echo = echo or (lambda line: None)
        self.prompt = prompt or input
        self.clock = SimClock(scenario.now)
        self._poll_seen: set[str] = set()
        self.approver_log: list[dict[str, Any]] = []
        self.watcher_passes: list[dict[str, Any]] = []
        self.support_passes: list[dict[str, Any]] = []
        self._clicked: set[str] = set()
        self.engine: Any = None
        self._seeder = ClusterSeeder(
            scenario,
            ec2=_moto_ec2,
            call_later=self.clock.call_later,
            echo=lambda line: self.echo(line),
            stamp=self._stamp,
        )

    # ---- running -----------------------------------------------------------------------------------
    def run(self) -> RehearsalResult:
        from rehearsal.eks.simulator import EksSimulator
        from rehearsal.kube.server import FakeKubeApiServer
        from rehearsal.kube.store import KubeStore
        from rehearsal.report import build_report, write_report

        started = time.monotonic()
        policy = self.scenario.fleet_policy
        workdir = Path(tempfile.mkdtemp(prefix="autopatch-rehearsal-"))
        policy_path = workdir / "fleet.json"
        policy_path.write_text(policy.model_dump_json(indent=2))
        simulator = EksSimulator(self.clock)
        log = io.StringIO()
        servers = []
        stores: dict[str, tuple[Any, str]] = {}
        engine = Engine(
            clock=self.clock,
            simulator=simulator,
            policy_path=policy_path,
            account_id=self.scenario.accountId,
            region=self.scenario.region,
            log=log,
            on_invocation=self._progress,
            on_slack_message=self._on_slack,
        )
        self.engine = engine
        try:
            for seed in self.scenario.clusters:
                store = KubeStore(seed.name, seed.version)
                store.clock_now = lambda: self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
                server = FakeKubeApiServer(
                    store,
                    cluster_name=seed.name,
                    credentials={LAMBDA_ACCESS_KEY: LAMBDA_SECRET_KEY},
                    readonly_key_ids={LAMBDA_ACCESS_KEY},
                )
                server.start()
                servers.append(server)
                stores[seed.name] = (store, server.endpoint)
            with engine:
                for seed in self.scenario.clusters:
                    store, endpoint = stores[seed.name]
                    self._seed_cluster(simulator, store, seed, endpoint)
                self._schedule(engine)
                finished = self.clock.run_until_idle(real_timeout=900)
                if not finished:
                    raise RuntimeError("the rehearsal did not settle within 15 minutes of real time")
                running = [e for e in engine.executions() if e["status"] == "RUNNING"]
                if len(running) > self.clock.pending_signals():
                    # Only executions waiting for a decision nobody will make may still run here.
                    raise RuntimeError(f"{len(running)} executions still running when the clock went idle")
                wall = time.monotonic() - started
                report = build_report(self, engine, simulator, wall_seconds=wall)
                ledger = engine.ledger_items()
        finally:
            for server in servers:
                server.stop()
        result = RehearsalResult(self.scenario, report, engine, simulator, wall, ledger, log.getvalue())
        if self.report_dir is not None:
            result.report_paths = write_report(report, self.report_dir, lambda_log=log.getvalue())
        return result

    def _seed_cluster(self, simulator: Any, store: Any, seed: Any, endpoint: str) -> None:
        self._seeder.seed_cluster(simulator, store, seed, endpoint)

    def _schedule(self, engine: Engine) -> None:
        for run in self.scenario.watcher.runs:

            def watcher_pass(run: str = run) -> None:
                self._watcher_pass(engine, run)

            self.clock.call_later(offset_seconds(run), watcher_pass)
        for injected in self.scenario.events:

            def put(injected: Any = injected) -> None:
                for _ in range(injected.repeat):
                    engine.put_event(injected.source, injected.detail_type, injected.detail)

            self.clock.call_later(offset_seconds(injected.at), put)

    def _watcher_pass(self, engine: Engine, run: str) -> None:
        self.echo(f"{self._stamp()}  release watcher pass ({run})")
        result = engine.invoke_function(
            "ReleaseWatcher", {"source": "aws.scheduler", "detail-type": "Scheduled"}
        )
        if isinstance(result, dict) and "announced" in result:
            self.watcher_passes.append({"at": self.clock.now().isoformat(), **result})
            for item in result["announced"]:
                self.echo(
                    f"{self._stamp()}  announced {item['cluster']} {item['kind']} {item['component']} "
                    f"{item['current']} → {item['target']} ({item['why']})"
                )
        else:
            self.echo(f"{self._stamp()}  release watcher failed: {result}")
        # In AWS a daily schedule of its own; here it looks at the same moments as the release watcher.
        support = engine.invoke_function(
            "EndOfSupportWatcher", {"source": "aws.scheduler", "detail-type": "Scheduled"}
        )
        if isinstance(support, dict) and "announced" in support:
            self.support_passes.append({"at": self.clock.now().isoformat(), **support})
            for item in support["announced"]:
                self.echo(
                    f"{self._stamp()}  announced {item['cluster']} control plane {item['version']} → "
                    f"{item['target']}: {item['phase']} support ends {str(item['deadline'])[:10]} "
                    f"({item['daysLeft']} days)"
                )
        else:
            self.echo(f"{self._stamp()}  end-of-support watcher failed: {support}")

    # ---- approvals -------------------------------------------------------------------------------
    def _on_slack(self, payload: dict[str, Any]) -> None:
        approval_id = approval_id_of(payload)
        if approval_id is None or self.approve == "none" or approval_id in self._clicked:
            return
        self._clicked.add(approval_id)
        delay = offset_seconds(self.scenario.approvals.delay)
        ts = payload.get("ts")
        self.clock.call_later(delay, lambda: self._decide(approval_id, ts))

    def _decide(self, approval_id: str, ts: str | None) -> None:
        """The cluster's first approver answers the request the way a person does: Approve or Reject
        in Slack, which sends a signed request to the approval API; the receiver queues it and the
        decider records it through decide(). An approver with no Slack user id decides through
        decide() directly, as `autopatch approve` does."""
        from autopatch.services import services

        svc = services()
        item = svc.ledger.get_approval(approval_id) or {}
        account, region, name = str(item.get("clusterKey", "##")).split("#", 2)
        cluster_policy = svc.policy.cluster(account, region, name)
        approvers = list(cluster_policy.approvers) if cluster_policy else []
        verdict, reason = "approve", None
        if self.approve == "reject":
            verdict, reason = "reject", "rehearsal run with --approve reject"
        elif self.approve == "prompt":
            answer = self.prompt(
                f"Approve {item.get('cluster')} {item.get('component')} {item.get('fromVersion')} → "
                f"{item.get('toVersion')}? [y/N] "
            )
            verdict = "approve" if answer.strip().lower() in ("y", "yes") else "reject"
            reason = None if verdict == "approve" else "rejected at the prompt"
        where = f"{self._stamp()}  {item.get('cluster')} {item.get('component')}: approval {approval_id}"
        clicker = next((a for a in approvers if a.slackUserId), None)
        if clicker is None or self.engine is None:
            self._decide_directly(approval_id, verdict, approvers[0].name if approvers else "nobody", reason)
            return
        status, _, body = self.engine.slack_click(
            approval_id,
            user_id=str(clicker.slackUserId),
            action=verdict,
            reason=reason,
            response_url=self.engine.slack.response_url(ts),
        )
        button = "Approve" if verdict == "approve" else "Reject"
        answer = f"{status} {body}".strip()
        self.echo(f"{where}: {clicker.name} pressed {button} in Slack (signed request, answered {answer})")
        # The decider runs from the queue on the clock; look at the record once it has.
        self.clock.call_later(1, lambda: self._record_decision(approval_id, where))

    def _record_decision(self, approval_id: str, where: str) -> None:
        from autopatch.services import services

        item = services().ledger.get_approval(approval_id) or {}
        if item.get("status") == "pending":
            self.echo(f"{where} still pending after the click")
            return
        decision, by = item.get("decision"), item.get("decidedBy")
        self.approver_log.append({"approval": approval_id, "decision": decision, "by": by, "via": "slack"})
        self.echo(f"{where} {decision} by {by} (Slack button → approval API → decider → decide())")

    def _decide_directly(self, approval_id: str, verdict: str, approver: str, reason: str | None) -> None:
        import boto3
        from autopatch.errors import ApprovalError
        from autopatch.logic.approval import decide
        from autopatch.services import services

        svc = services()
        try:
            decision = decide(
                approval_id,
                verdict,  # type: ignore[arg-type]
                approver,
                reason,
                ledger=svc.ledger,
                policy=svc.policy,
                sfn=boto3.client("stepfunctions"),
            )
            line = f"{decision.decision} by {decision.by} (simulated approver, through decide())"
            self.approver_log.append(
                {"approval": approval_id, "decision": decision.decision, "by": decision.by, "via": "decide"}
            )
        except ApprovalError as exc:
            line = f"decision refused: {exc}"
        self.echo(f"{self._stamp()}  approval {approval_id} {line}")

    # ---- console ---------------------------------------------------------------------------------
    def _stamp(self) -> str:
        seconds = int(self.clock.elapsed())
        return f"[+{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}]"

    def _progress(self, invocation: Invocation) -> None:
        if invocation.function in ("ReleaseWatcher", "ReleaseLock"):
            return
        op = _operation_of(invocation)
        if op is None:
            if invocation.function == "Validate" and invocation.error:
                self.echo(f"{self._stamp()}  event refused: {invocation.error}: {invocation.error_message}")
            return
        versions = f"{op['fromVersion']} → {op['toVersion']}"
        hops = op.get("hops") or []
        if hops:  # a control-plane upgrade: the hop in hand
            versions = f"{hops[-1]['fromVersion']} → {hops[-1]['toVersion']} (hop {len(hops)})"
        name = ("↳ " if op.get("parent") else "") + op["component"]["name"]
        label = f"{op['cluster']['name']:<8} {name:<13} {versions}"
        step = invocation.function
        if step == "Upgrade":  # the upgrade's bookkeeping: say which action, keep the routine ones quiet
            step = str(invocation.event.get("action", step)).replace("_", " ")
            result = invocation.result if isinstance(invocation.result, dict) else {}
            if not invocation.error and result.get("status") == "running" and step != "finish hop":
                return
        if invocation.error:
            outcome = f"{invocation.error}: {invocation.error_message}"
            if invocation.error == "ClusterBusy" and op["id"] in self._poll_seen:
                return
            self._poll_seen.add(op["id"]) if invocation.error == "ClusterBusy" else None
        elif step == "Poll":
            update = invocation.result.get("update", {}) if isinstance(invocation.result, dict) else {}
            key = f"{op['id']}:{update.get('id')}:{update.get('status')}"
            if key in self._poll_seen:
                return
            self._poll_seen.add(key)
            outcome = f"update {update.get('status')}"
        elif step == "RequestApproval":
            outcome = "waiting for approval"
        else:
            result = invocation.result if isinstance(invocation.result, dict) else {}
            status = result.get("status", "running")
            outcome = "ok" if status == "running" else f"{status} ({result.get('reason')})"
            if step == "Verify" and status == "running" and result.get("verify", {}).get("retry"):
                outcome = "not settled yet: " + "; ".join(result["verify"].get("findings", [])[:2])
        if step in QUIET_STEPS and outcome == "ok":
            return
        self.echo(f"{self._stamp()}  {label}  {step.lower():<15} {outcome}")


class ClusterSeeder:
    """Seeds simulated clusters from a scenario: shared by a rehearsal and the sandbox.

    `ec2(region)` is the EC2 client the subnets are made with (moto, in-process or over HTTP);
    `call_later(seconds, callback)` schedules the scenario's pod changes on the run's clock.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        ec2: Callable[[str], Any],
        call_later: Callable[[float, Callable[[], None]], None],
        echo: Callable[[str], None] | None = None,
        stamp: Callable[[], str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.ec2 = ec2
        self.call_later = call_later
        self.echo = echo or (lambda line: None)
        self.stamp = stamp or (lambda: "")
        self._vpcs: dict[str, tuple[str, Any, list[Any]]] = {}

    def seed_cluster(
        self, simulator: Any, store: Any, seed: Any, endpoint: str, *, ca_data: str | None = None
    ) -> None:
        """Add one scenario cluster to the simulator: its subnets (in moto's EC2), nodes, objects,
        add-ons with customer edits, node groups, workloads, scheduled pod changes and faults."""
        from rehearsal.eks.simulator import ClusterSubnet

        region = seed.region or self.scenario.region
        cluster_subnets = [
            ClusterSubnet(subnet_id, zone, free_ips)
            for subnet_id, zone, free_ips in self._cluster_subnets(seed.name, region, seed.subnets)
        ]
        simulator.add_cluster(
            seed.name,
            account_id=seed.accountId or self.scenario.accountId,
            region=region,
            version=seed.version,
            store=store,
            endpoint=endpoint,
            ca_data=ca_data,
            support_type=seed.supportType,
            subnets=cluster_subnets,
            vpc_id=self._vpcs[seed.name][0],
            enforce_upgrade_insights=seed.enforceUpgradeInsights,
        )
        kubelet = f"v{seed.nodesVersion or seed.version}.0-eks"
        for index in range(seed.nodes):
            store.put(
                {
                    "kind": "Node",
                    "metadata": {
                        "name": f"ip-10-0-{index // 250}-{index % 250 + 10}."
                        f"{seed.region or self.scenario.region}.compute.internal",
                        "labels": {"kubernetes.io/os": "linux"},
                    },
                    "status": {
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "nodeInfo": {"kubeletVersion": kubelet, "kubeProxyVersion": kubelet},
                    },
                },
                manager="kubelet",
            )
        for index, manifest in enumerate(seed.objects):
            try:
                store.apply_manifest(manifest)
            except ValueError as exc:
                raise ValueError(f"{seed.name}: objects.{index}: {exc}") from None
        for usage in seed.apiUsage:
            store.record_api_usage(usage.userAgent, usage.path, requests=usage.requests, at=self.scenario.now)
        for addon in seed.addons:
            simulator.install_addon(
                seed.name,
                addon.name,
                addon.version,
                configuration_values=addon.configurationValues,
                service_account_role_arn=addon.serviceAccountRoleArn,
            )
            for edit in addon.edits:
                kind, rest = edit.object.split(" ", 1)
                namespace, name = rest.split("/", 1)
                path = parse_path(edit.path)
                value = edit.value
                if edit.replace is not None:
                    current = str(store.value(kind, namespace, name, path) or "")
                    old, new = edit.replace
                    if old not in current:
                        raise ValueError(f"{seed.name}: {edit.object} {edit.path} does not contain {old!r}")
                    value = current.replace(old, new, 1)
                simulator.customer_edit(seed.name, kind, namespace, name, path, value, manager=edit.manager)
        for group in seed.nodegroups:
            simulator.add_nodegroup(
                seed.name,
                group.name,
                ami_type=group.amiType,
                release_version=group.releaseVersion,
                instance_type=group.instanceType,
                desired=group.nodes,
                min_size=min(1, group.nodes),
                max_size=group.maxNodes or max(group.nodes * 2, group.nodes + 2),
                subnets=self._subnets(seed.name, region, group.subnets),
                update_config=group.updateConfig,
                custom_ami_id=group.customAmiId,
            )
        for workload in seed.workloads:
            simulator.add_workload(
                seed.name,
                namespace=workload.namespace,
                name=workload.name,
                replicas=workload.replicas,
                nodegroup=workload.nodegroup,
                pdb=workload.pdb,
                readiness_probe=workload.readinessProbe,
            )
        for change in seed.podChanges:

            def change_pod(change: Any = change, cluster: str = seed.name) -> None:
                self.change_pod(simulator, store, cluster, change)

            self.call_later(offset_seconds(change.at), change_pod)
        for fault in seed.faults:
            if fault.controlPlane:
                simulator.inject_control_plane_fault(
                    seed.name, fault.model_dump(exclude_none=True, exclude={"addon", "controlPlane"})
                )
                continue
            simulator.inject_fault(
                seed.name, fault.addon, fault.model_dump(exclude_none=True, exclude={"addon", "controlPlane"})
            )

    def _cluster_subnets(self, cluster: str, region: str, seeds: list[Any]) -> list[tuple[str, str, int]]:
        """The cluster's own subnets in moto, with exactly `freeIps` free addresses: the block is
        rounded up as for node group subnets, then network interfaces take the addresses above it."""
        ec2 = self.ec2(region)
        found = []
        for seed, (subnet_id, zone) in zip(seeds, self._subnets(cluster, region, seeds), strict=True):
            available = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailableIpAddressCount"]
            for _ in range(max(0, int(available) - seed.freeIps)):
                ec2.create_network_interface(SubnetId=subnet_id, Description=f"taken address ({cluster})")
            free = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["AvailableIpAddressCount"]
            found.append((subnet_id, zone, int(free)))
        return found

    def _subnets(self, cluster: str, region: str, seeds: list[Any]) -> list[tuple[str, str]]:
        """Real (moto) subnets, sized for the free IPs the scenario asks for: the preflight reads them."""
        import ipaddress
        import math

        ec2 = self.ec2(region)
        if cluster not in self._vpcs:
            block = ipaddress.ip_network(f"10.{len(self._vpcs) % 250}.0.0/16")
            vpc = ec2.create_vpc(CidrBlock=str(block))["Vpc"]["VpcId"]
            self._vpcs[cluster] = (vpc, block, [])
        vpc, block, used = self._vpcs[cluster]
        subnets = []
        for seed in seeds:
            prefix = max(16, min(28, 32 - math.ceil(math.log2(seed.freeIps + 5))))
            cidr = next(n for n in block.subnets(new_prefix=prefix) if not any(n.overlaps(u) for u in used))
            used.append(cidr)
            zone = seed.az if seed.az.startswith(region) else f"{region}{seed.az}"
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=str(cidr), AvailabilityZone=zone)["Subnet"]
            subnets.append((subnet["SubnetId"], zone))
        return subnets

    def change_pod(self, simulator: Any, store: Any, cluster: str, change: Any) -> None:
        namespace, name = change.workload.split("/", 1)
        # Workload pods carry the workload's `app` label (the simulator's default labels).
        pods = sorted(store.list("Pod", namespace, labels={"app": name}), key=lambda p: p["metadata"]["name"])
        if change.pod >= len(pods):
            raise ValueError(f"{cluster}: {change.workload} has no pod #{change.pod}")
        pod = pods[change.pod]["metadata"]["name"]
        simulator.set_pod_ready(cluster, namespace, pod, change.ready)
        state = "Ready" if change.ready else "not Ready"
        self.echo(f"{self.stamp()}  {cluster}: pod {namespace}/{pod} is {state}")


def _operation_of(invocation: Invocation) -> dict[str, Any] | None:
    event = invocation.event
    if invocation.function == "RequestApproval":
        event = event.get("operation", {})
    if isinstance(invocation.result, dict) and "cluster" in invocation.result:
        return invocation.result
    if isinstance(event, dict) and "cluster" in event and "component" in event:
        return event
    return None


def _moto_ec2(region: str) -> Any:
    import boto3

    return boto3.client("ec2", region_name=region)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
