"""The Kubernetes objects each simulated EKS add-on installs, and the Pods its workloads run.

EKS applies an add-on's objects with server-side apply as the field manager `eks`
(UG:kubernetes-field-management). The objects below follow what EKS installs on a real cluster,
cut down to the fields the rehearsal reads. A workload's Pods and `status` are what the Deployment
and DaemonSet controllers would produce; the simulator writes them directly so the fake Kubernetes
API shows a rolled-out (or stuck) add-on without running controllers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rehearsal.kube.store import KINDS, KubeStore, ObjectKey

EKS_FIELD_MANAGER = "eks"
# Pods are created by the ReplicaSet and DaemonSet controllers, which run in kube-controller-manager.
POD_FIELD_MANAGER = "kube-controller-manager"
ADDON_NAMESPACE = "kube-system"

ADDON_NAME_LABEL = "app.kubernetes.io/name"  # value: the EKS add-on name (vpc-cni, coredns, ...)
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
VERSION_LABEL = "app.kubernetes.io/version"
EKS_COMPONENT_LABEL = "eks.amazonaws.com/component"

# The objects of each add-on, as (kind, namespace, name). Product code keeps its own copy of this table.
ADDON_OBJECTS: dict[str, tuple[ObjectKey, ...]] = {
    "coredns": (
        ("Deployment", ADDON_NAMESPACE, "coredns"),
        ("ConfigMap", ADDON_NAMESPACE, "coredns"),
        ("PodDisruptionBudget", ADDON_NAMESPACE, "coredns"),
    ),
    "vpc-cni": (("DaemonSet", ADDON_NAMESPACE, "aws-node"),),
    "kube-proxy": (
        ("DaemonSet", ADDON_NAMESPACE, "kube-proxy"),
        ("ConfigMap", ADDON_NAMESPACE, "kube-proxy-config"),
    ),
    "aws-ebs-csi-driver": (
        ("Deployment", ADDON_NAMESPACE, "ebs-csi-controller"),
        ("DaemonSet", ADDON_NAMESPACE, "ebs-csi-node"),
    ),
    "eks-pod-identity-agent": (("DaemonSet", ADDON_NAMESPACE, "eks-pod-identity-agent"),),
}
# The objects of each add-on that run Pods.
ADDON_WORKLOADS: dict[str, tuple[ObjectKey, ...]] = {
    addon_name: tuple(key for key in keys if key[0] in ("Deployment", "DaemonSet"))
    for addon_name, keys in ADDON_OBJECTS.items()
}

# Account of the EKS add-on images in most commercial Regions.
ECR_ACCOUNT = "602401143452"

# The Corefile EKS ships with CoreDNS (the odd indentation of the health block is EKS's own).
DEFAULT_COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
      }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


@dataclass(frozen=True)
class ClusterInfo:
    """What an add-on's objects need to know about their cluster."""

    name: str
    region: str


def ecr_registry(region: str) -> str:
    return f"{ECR_ACCOUNT}.dkr.ecr.{region}.amazonaws.com"


def addon_manifests(
    addon_name: str,
    version: str,
    cluster: ClusterInfo,
    configuration: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The objects EKS applies for `addon_name` at `version`, with `configuration` (parsed
    configurationValues) folded in."""
    builders = {
        "coredns": _coredns,
        "vpc-cni": _vpc_cni,
        "kube-proxy": _kube_proxy,
        "aws-ebs-csi-driver": _ebs_csi_driver,
        "eks-pod-identity-agent": _pod_identity_agent,
    }
    if addon_name not in builders:
        raise ValueError(f"the simulator has no manifests for add-on {addon_name!r}")
    return builders[addon_name](version, cluster, dict(configuration or {}))


def _labels(addon_name: str, version: str, k8s_app: str | None, component: str | None) -> dict[str, str]:
    labels = {ADDON_NAME_LABEL: addon_name, MANAGED_BY_LABEL: "EKS", VERSION_LABEL: version}
    if k8s_app:
        labels["k8s-app"] = k8s_app
    if component:
        labels[EKS_COMPONENT_LABEL] = component
    return labels


def _metadata(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": ADDON_NAMESPACE, "labels": dict(labels)}


def _env(values: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"name": key, "value": value} for key, value in values.items()]


def _override_env(env: list[dict[str, Any]], overrides: Mapping[str, str]) -> None:
    """Set or add variables, keeping the order of the ones EKS ships."""
    by_name = {entry["name"]: entry for entry in env}
    for key, value in overrides.items():
        if key in by_name:
            by_name[key].pop("valueFrom", None)
            by_name[key]["value"] = value
        else:
            env.append({"name": key, "value": value})


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    all_containers = pod_spec.get("initContainers", []) + pod_spec["containers"]
    return next(c for c in all_containers if c["name"] == name)


# ---- coredns ----------------------------------------------------------------------------------


def _coredns(version: str, cluster: ClusterInfo, config: dict[str, Any]) -> list[dict[str, Any]]:
    labels = _labels("coredns", version, "kube-dns", "coredns")
    selector = {EKS_COMPONENT_LABEL: "coredns", "k8s-app": "kube-dns"}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "coredns",
        "priorityClassName": "system-cluster-critical",
        "dnsPolicy": "Default",
        "containers": [
            {
                "name": "coredns",
                "image": f"{ecr_registry(cluster.region)}/eks/coredns:{version}",
                "imagePullPolicy": "IfNotPresent",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                ],
                "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                "livenessProbe": {
                    "httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                    "initialDelaySeconds": 60,
                    "timeoutSeconds": 5,
                    "failureThreshold": 5,
                },
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"},
                    "periodSeconds": 10,
                    "timeoutSeconds": 1,
                    "failureThreshold": 3,
                },
                "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
            }
        ],
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        ],
        "volumes": [
            {
                "name": "config-volume",
                "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]},
            }
        ],
    }
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata("coredns", labels),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {**selector, ADDON_NAME_LABEL: "coredns"}}, "spec": pod_spec},
        },
    }
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata("coredns", labels),
        "data": {"Corefile": DEFAULT_COREFILE},
    }
    # Shipped since v1.9.3-eksbuild.6 / v1.10.1-eksbuild.3 (addon_versions.json, coredns rules).
    pdb: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata("coredns", labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    }
    _configure_coredns(deployment, config_map, config)
    return [deployment, config_map, pdb]


def _configure_coredns(
    deployment: dict[str, Any], config_map: dict[str, Any], config: dict[str, Any]
) -> None:
    pod_spec = deployment["spec"]["template"]["spec"]
    if "replicaCount" in config:
        deployment["spec"]["replicas"] = config["replicaCount"]
    if "resources" in config:
        _container(pod_spec, "coredns")["resources"] = copy.deepcopy(config["resources"])
    if "tolerations" in config:
        pod_spec["tolerations"] = copy.deepcopy(config["tolerations"])
    if "nodeSelector" in config:
        pod_spec["nodeSelector"] = dict(config["nodeSelector"])
    if "corefile" in config:
        config_map["data"]["Corefile"] = config["corefile"]


# ---- vpc-cni ----------------------------------------------------------------------------------

_AWS_NODE_ENV = {
    "ADDITIONAL_ENI_TAGS": "{}",
    "ANNOTATE_POD_IP": "false",
    "AWS_VPC_CNI_NODE_PORT_SUPPORT": "true",
    "AWS_VPC_ENI_MTU": "9001",
    "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "false",
    "AWS_VPC_K8S_CNI_EXTERNALSNAT": "false",
    "AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG",
    "AWS_VPC_K8S_CNI_LOG_FILE": "/host/var/log/aws-routed-eni/ipamd.log",
    "AWS_VPC_K8S_CNI_RANDOMIZESNAT": "prng",
    "AWS_VPC_K8S_CNI_VETHPREFIX": "eni",
    "AWS_VPC_K8S_PLUGIN_LOG_FILE": "/var/log/aws-routed-eni/plugin.log",
    "AWS_VPC_K8S_PLUGIN_LOG_LEVEL": "DEBUG",
    "DISABLE_INTROSPECTION": "false",
    "DISABLE_METRICS": "false",
    "DISABLE_NETWORK_RESOURCE_PROVISIONING": "false",
    "ENABLE_IPv4": "true",
    "ENABLE_IPv6": "false",
    "ENABLE_POD_ENI": "false",
    "ENABLE_PREFIX_DELEGATION": "false",
    "ENABLE_SUBNET_DISCOVERY": "true",
    "NETWORK_POLICY_ENFORCING_MODE": "standard",
    "WARM_ENI_TARGET": "1",
    "WARM_PREFIX_TARGET": "1",
}

# nodeAgent configuration key -> command-line flag of the network policy agent.
_NODE_AGENT_FLAGS = {
    "enablePolicyEventLogs": "--enable-policy-event-logs",
    "enableCloudWatchLogs": "--enable-cloudwatch-logs",
    "metricsBindAddr": "--metrics-bind-addr",
    "healthProbeBindAddr": "--health-probe-bind-addr",
}
_NODE_AGENT_DEFAULTS = {
    "enablePolicyEventLogs": "false",
    "enableCloudWatchLogs": "false",
    "metricsBindAddr": ":8162",
    "healthProbeBindAddr": ":8163",
}


def _vpc_cni(version: str, cluster: ClusterInfo, config: dict[str, Any]) -> list[dict[str, Any]]:
    labels = _labels("vpc-cni", version, "aws-node", None)
    registry = ecr_registry(cluster.region)
    env = [
        *_env(_AWS_NODE_ENV),
        {"name": "CLUSTER_NAME", "value": cluster.name},
        {"name": "VPC_CNI_VERSION", "value": version.split("-")[0]},
        {
            "name": "MY_NODE_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
        },
        {
            "name": "MY_POD_NAME",
            "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
        },
    ]
    pod_spec: dict[str, Any] = {
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "serviceAccountName": "aws-node",
        "initContainers": [
            {
                "name": "aws-vpc-cni-init",
                "image": f"{registry}/amazon-k8s-cni-init:{version}",
                "env": _env({"DISABLE_TCP_EARLY_DEMUX": "false", "ENABLE_IPv6": "false"}),
                "resources": {"requests": {"cpu": "25m"}},
                "securityContext": {"privileged": True},
            }
        ],
        "containers": [
            {
                "name": "aws-node",
                "image": f"{registry}/amazon-k8s-cni:{version}",
                "env": env,
                "ports": [{"name": "metrics", "containerPort": 61678, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "25m"}},
                "readinessProbe": {
                    "exec": {"command": ["/app/grpc-health-probe", "-addr=:50051", "-connect-timeout=5s"]},
                    "initialDelaySeconds": 1,
                    "timeoutSeconds": 10,
                },
            },
            {
                "name": "aws-eks-nodeagent",
                # The network policy agent has its own version line; which build ships with which CNI
                # build is not in our data, so the add-on version stands in for its tag.
                "image": f"{registry}/amazon/aws-network-policy-agent:{version}",
                "args": _node_agent_args({}),
                "resources": {"requests": {"cpu": "25m"}},
            },
        ],
        "tolerations": [{"operator": "Exists"}],
    }
    daemon_set: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata("aws-node", labels),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "aws-node", ADDON_NAME_LABEL: "vpc-cni"}},
                "spec": pod_spec,
            },
        },
    }
    _configure_vpc_cni(pod_spec, config)
    return [daemon_set]


def _node_agent_args(overrides: Mapping[str, Any]) -> list[str]:
    values = {**_NODE_AGENT_DEFAULTS, **{k: v for k, v in overrides.items() if k in _NODE_AGENT_FLAGS}}
    return [
        "--enable-ipv6=false",
        "--enable-network-policy=false",
        *(f"{_NODE_AGENT_FLAGS[key]}={value}" for key, value in values.items()),
        "--conntrack-cache-cleanup-period=300",
    ]


def _configure_vpc_cni(pod_spec: dict[str, Any], config: dict[str, Any]) -> None:
    aws_node = _container(pod_spec, "aws-node")
    if "env" in config:
        _override_env(aws_node["env"], config["env"])
    if "resources" in config:
        aws_node["resources"] = copy.deepcopy(config["resources"])
    init_env = config.get("init", {}).get("env")
    if init_env:
        _override_env(_container(pod_spec, "aws-vpc-cni-init")["env"], init_env)
    node_agent_config = config.get("nodeAgent", {})
    if node_agent_config:
        node_agent = _container(pod_spec, "aws-eks-nodeagent")
        node_agent["args"] = _node_agent_args(node_agent_config)
        if "resources" in node_agent_config:
            node_agent["resources"] = copy.deepcopy(node_agent_config["resources"])


# ---- kube-proxy -------------------------------------------------------------------------------


def kube_proxy_config_text(
    mode: str = "iptables", ipvs: Mapping[str, str] | None = None, iptables: Mapping[str, str] | None = None
) -> str:
    """The KubeProxyConfiguration EKS keeps in the kube-proxy-config ConfigMap."""
    ipvs = {"minSyncPeriod": "0s", "scheduler": '""', "syncPeriod": "30s", **(ipvs or {})}
    iptables = {"minSyncPeriod": "0s", "syncPeriod": "30s", **(iptables or {})}
    return (
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
        "bindAddress: 0.0.0.0\n"
        "clientConnection:\n"
        '  acceptContentTypes: ""\n'
        "  burst: 10\n"
        "  contentType: application/vnd.kubernetes.protobuf\n"
        "  kubeconfig: /var/lib/kube-proxy/kubeconfig\n"
        "  qps: 5\n"
        'clusterCIDR: ""\n'
        "configSyncPeriod: 15m0s\n"
        "conntrack:\n"
        "  maxPerCore: 32768\n"
        "  min: 131072\n"
        "  tcpCloseWaitTimeout: 1h0m0s\n"
        "  tcpEstablishedTimeout: 24h0m0s\n"
        "enableProfiling: false\n"
        "healthzBindAddress: 0.0.0.0:10256\n"
        'hostnameOverride: ""\n'
        "iptables:\n"
        "  masqueradeAll: false\n"
        "  masqueradeBit: 14\n"
        f"  minSyncPeriod: {iptables['minSyncPeriod']}\n"
        f"  syncPeriod: {iptables['syncPeriod']}\n"
        "ipvs:\n"
        "  excludeCIDRs: null\n"
        f"  minSyncPeriod: {ipvs['minSyncPeriod']}\n"
        f"  scheduler: {ipvs['scheduler']}\n"
        f"  syncPeriod: {ipvs['syncPeriod']}\n"
        "kind: KubeProxyConfiguration\n"
        "metricsBindAddress: 0.0.0.0:10249\n"
        f'mode: "{mode}"\n'
        "nodePortAddresses: null\n"
        "oomScoreAdj: -998\n"
        'portRange: ""\n'
    )


def _kube_proxy(version: str, cluster: ClusterInfo, config: dict[str, Any]) -> list[dict[str, Any]]:
    labels = _labels("kube-proxy", version, "kube-proxy", "kube-proxy")
    # The add-on runs the EKS-D "minimal" image, whose tag differs from the add-on version
    # (addon_versions.json, kube-proxy self_managed_image_tags_example).
    image_tag = version.replace("-eksbuild.", "-minimal-eksbuild.")
    container: dict[str, Any] = {
        "name": "kube-proxy",
        "image": f"{ecr_registry(cluster.region)}/eks/kube-proxy:{image_tag}",
        "command": [
            "kube-proxy",
            "--v=2",
            "--config=/var/lib/kube-proxy-config/config",
            "--hostname-override=$(NODE_NAME)",
        ],
        "env": [
            {
                "name": "NODE_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
            }
        ],
        "resources": {"requests": {"cpu": "100m"}},
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "varlog", "mountPath": "/var/log"},
            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
            {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": True},
            {"name": "config", "mountPath": "/var/lib/kube-proxy-config/"},
        ],
    }
    daemon_set: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata("kube-proxy", labels),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-proxy", ADDON_NAME_LABEL: "kube-proxy"}},
                "spec": {
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "containers": [container],
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [
                        {"name": "varlog", "hostPath": {"path": "/var/log"}},
                        {
                            "name": "xtables-lock",
                            "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                        },
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                        {"name": "config", "configMap": {"name": "kube-proxy-config"}},
                    ],
                },
            },
        },
    }
    if "resources" in config:
        container["resources"] = copy.deepcopy(config["resources"])
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata("kube-proxy-config", labels),
        "data": {
            "config": kube_proxy_config_text(
                mode=config.get("mode", "iptables"), ipvs=config.get("ipvs"), iptables=config.get("iptables")
            )
        },
    }
    return [daemon_set, config_map]


# ---- aws-ebs-csi-driver -----------------------------------------------------------------------

EBS_CSI_DRIVER = "ebs.csi.aws.com"
_EBS_CSI_ENDPOINT_CONTROLLER = "unix:///var/lib/csi/sockets/pluginproxy/csi.sock"
_EBS_CSI_ENDPOINT_NODE = "unix:/csi/csi.sock"
_EBS_PLUGIN_RESOURCES = {"limits": {"memory": "256Mi"}, "requests": {"cpu": "10m", "memory": "40Mi"}}
# Neither part runs on Fargate or hybrid nodes.
_NOT_FARGATE_OR_HYBRID = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "eks.amazonaws.com/compute-type",
                            "operator": "NotIn",
                            "values": ["fargate", "hybrid"],
                        }
                    ]
                }
            ]
        }
    }
}


def _ebs_plugin_probe() -> dict[str, Any]:
    return {
        "httpGet": {"path": "/healthz", "port": "healthz"},
        "initialDelaySeconds": 10,
        "timeoutSeconds": 3,
        "periodSeconds": 10,
        "failureThreshold": 5,
    }


def _ebs_csi_driver(version: str, cluster: ClusterInfo, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The controller Deployment and the node DaemonSet. The CSI sidecars (provisioner, attacher,
    snapshotter, resizer, node-driver-registrar, liveness-probe) are left out: their image tags ship on
    their own version lines, which our data does not pair with add-on versions."""
    labels = {
        **_labels("aws-ebs-csi-driver", version, None, None),
        "app.kubernetes.io/component": "csi-driver",
    }
    image = f"{ecr_registry(cluster.region)}/eks/aws-ebs-csi-driver:{version}"
    node_name_env = {
        "name": "CSI_NODE_NAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
    }
    controller_selector = {"app": "ebs-csi-controller", ADDON_NAME_LABEL: "aws-ebs-csi-driver"}
    controller_pod: dict[str, Any] = {
        "serviceAccountName": "ebs-csi-controller-sa",
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": copy.deepcopy(_NOT_FARGATE_OR_HYBRID),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "containers": [
            {
                "name": "ebs-plugin",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "controller",
                    "--endpoint=$(CSI_ENDPOINT)",
                    "--batching=true",
                    "--logging-format=text",
                    "--v=2",
                ],
                "env": [{"name": "CSI_ENDPOINT", "value": _EBS_CSI_ENDPOINT_CONTROLLER}, node_name_env],
                "ports": [{"name": "healthz", "containerPort": 9808, "protocol": "TCP"}],
                "livenessProbe": _ebs_plugin_probe(),
                "readinessProbe": _ebs_plugin_probe(),
                "resources": copy.deepcopy(_EBS_PLUGIN_RESOURCES),
                "volumeMounts": [{"name": "socket-dir", "mountPath": "/var/lib/csi/sockets/pluginproxy/"}],
            }
        ],
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ],
        "volumes": [{"name": "socket-dir", "emptyDir": {}}],
    }
    controller: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata("ebs-csi-controller", labels),
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(controller_selector)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": dict(controller_selector)}, "spec": controller_pod},
        },
    }
    node_selector = {"app": "ebs-csi-node", ADDON_NAME_LABEL: "aws-ebs-csi-driver"}
    node_pod: dict[str, Any] = {
        "serviceAccountName": "ebs-csi-node-sa",
        "priorityClassName": "system-node-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": copy.deepcopy(_NOT_FARGATE_OR_HYBRID),
        "securityContext": {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0, "fsGroup": 0},
        "containers": [
            {
                "name": "ebs-plugin",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "node",
                    "--endpoint=$(CSI_ENDPOINT)",
                    f"--csi-mount-point-prefix=/var/lib/kubelet/plugins/kubernetes.io/csi/{EBS_CSI_DRIVER}/",
                    "--logging-format=text",
                    "--v=2",
                ],
                "env": [
                    {"name": "CSI_ENDPOINT", "value": _EBS_CSI_ENDPOINT_NODE},
                    copy.deepcopy(node_name_env),
                ],
                "ports": [{"name": "healthz", "containerPort": 9808, "protocol": "TCP"}],
                "livenessProbe": _ebs_plugin_probe(),
                "resources": copy.deepcopy(_EBS_PLUGIN_RESOURCES),
                "securityContext": {"privileged": True, "readOnlyRootFilesystem": True},
                "volumeMounts": [
                    {
                        "name": "kubelet-dir",
                        "mountPath": "/var/lib/kubelet",
                        "mountPropagation": "Bidirectional",
                    },
                    {"name": "plugin-dir", "mountPath": "/csi"},
                    {"name": "device-dir", "mountPath": "/dev"},
                ],
            }
        ],
        # A node plugin has to run wherever volumes may be attached, so it tolerates every taint.
        "tolerations": [{"operator": "Exists"}],
        "volumes": [
            {"name": "kubelet-dir", "hostPath": {"path": "/var/lib/kubelet", "type": "Directory"}},
            {
                "name": "plugin-dir",
                "hostPath": {
                    "path": f"/var/lib/kubelet/plugins/{EBS_CSI_DRIVER}/",
                    "type": "DirectoryOrCreate",
                },
            },
            {"name": "device-dir", "hostPath": {"path": "/dev", "type": "Directory"}},
        ],
    }
    node: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata("ebs-csi-node", labels),
        "spec": {
            "selector": {"matchLabels": dict(node_selector)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": dict(node_selector)}, "spec": node_pod},
        },
    }
    _configure_ebs_csi_driver(controller, node_pod, config)
    return [controller, node]


def _configure_ebs_csi_driver(
    controller: dict[str, Any], node_pod: dict[str, Any], config: dict[str, Any]
) -> None:
    controller_config = config.get("controller", {})
    controller_pod = controller["spec"]["template"]["spec"]
    if "replicaCount" in controller_config:
        controller["spec"]["replicas"] = controller_config["replicaCount"]
    if "resources" in controller_config:
        _container(controller_pod, "ebs-plugin")["resources"] = copy.deepcopy(controller_config["resources"])
    if "tolerations" in controller_config:
        controller_pod["tolerations"] = copy.deepcopy(controller_config["tolerations"])
    node_config = config.get("node", {})
    if "resources" in node_config:
        _container(node_pod, "ebs-plugin")["resources"] = copy.deepcopy(node_config["resources"])
    if "tolerations" in node_config:
        node_pod["tolerations"] = copy.deepcopy(node_config["tolerations"])
    # defaultStorageClass creates a StorageClass, a kind the simulated Kubernetes API does not have.


# ---- eks-pod-identity-agent -------------------------------------------------------------------


def _pod_identity_agent(version: str, cluster: ClusterInfo, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent runs on the host network of every node and serves credentials to Pods on a
    link-local address, which its init container sets up."""
    labels = _labels("eks-pod-identity-agent", version, None, None)
    selector = {
        ADDON_NAME_LABEL: "eks-pod-identity-agent",
        "app.kubernetes.io/instance": "eks-pod-identity-agent",
    }
    image = f"{ecr_registry(cluster.region)}/eks/eks-pod-identity-agent:{version}"
    agent: dict[str, Any] = {
        "name": "eks-pod-identity-agent",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/go-runner", "/eks-pod-identity-agent", "server"],
        "args": _pod_identity_agent_args(cluster.name, {}),
        "ports": [
            {"name": "proxy", "containerPort": 80, "protocol": "TCP"},
            {"name": "probes-port", "containerPort": 2703, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": {"host": "localhost", "path": "/healthz", "port": "probes-port", "scheme": "HTTP"},
            "initialDelaySeconds": 30,
            "timeoutSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"host": "localhost", "path": "/readyz", "port": "probes-port", "scheme": "HTTP"},
            "initialDelaySeconds": 1,
            "timeoutSeconds": 10,
            "failureThreshold": 30,
        },
        "securityContext": {"capabilities": {"add": ["CAP_NET_BIND_SERVICE"]}},
    }
    pod_spec: dict[str, Any] = {
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "terminationGracePeriodSeconds": 30,
        "affinity": copy.deepcopy(_NOT_FARGATE_OR_HYBRID),
        "initContainers": [
            {
                "name": "eks-pod-identity-agent-init",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["/go-runner", "/eks-pod-identity-agent", "initialize"],
                "securityContext": {"privileged": True},
            }
        ],
        "containers": [agent],
        "tolerations": [{"operator": "Exists"}],
    }
    daemon_set: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata("eks-pod-identity-agent", labels),
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {"metadata": {"labels": dict(selector)}, "spec": pod_spec},
        },
    }
    additional_args = config.get("agent", {}).get("additionalArgs", {})
    if additional_args:
        agent["args"] = _pod_identity_agent_args(cluster.name, additional_args)
    if "resources" in config:
        agent["resources"] = copy.deepcopy(config["resources"])
    if "tolerations" in config:
        pod_spec["tolerations"] = copy.deepcopy(config["tolerations"])
    return [daemon_set]


def _pod_identity_agent_args(cluster_name: str, additional: Mapping[str, str]) -> list[str]:
    """The agent's flags; `agent.additionalArgs` adds `flag value` pairs after them."""
    args = ["--port", "80", "--cluster-name", cluster_name, "--probe-port", "2703"]
    for flag, value in additional.items():
        args += [flag, value]
    return args


# ---- pods and workload status -----------------------------------------------------------------


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def template_hash(workload: dict[str, Any]) -> str:
    """Stands in for pod-template-hash / controller-revision-hash: changes when the template does."""
    return _digest(json.dumps(workload["spec"]["template"], sort_keys=True), length=10)


def _hash_label(kind: str) -> str:
    return "pod-template-hash" if kind == "Deployment" else "controller-revision-hash"


def _node_names(store: KubeStore) -> list[str]:
    return [node["metadata"]["name"] for node in store.list("Node")]


def _pod_slots(
    store: KubeStore, workload: dict[str, Any], fallback_node_count: int
) -> list[tuple[str, str | None]]:
    """(pod name, node name) of every Pod the workload should have now."""
    name = workload["metadata"]["name"]
    revision = template_hash(workload)
    nodes = _node_names(store)
    if workload["kind"] == "Deployment":
        replicas = int(workload["spec"].get("replicas", 1))
        return [
            (
                f"{name}-{revision}-{_digest(revision, str(i), length=5)}",
                nodes[i % len(nodes)] if nodes else None,
            )
            for i in range(replicas)
        ]
    if nodes:
        return [(f"{name}-{_digest(revision, node, length=5)}", node) for node in nodes]
    return [(f"{name}-{_digest(revision, str(i), length=5)}", None) for i in range(fallback_node_count)]


def _owned_pods(store: KubeStore, workload: dict[str, Any]) -> list[dict[str, Any]]:
    uid = workload["metadata"]["uid"]
    return [
        pod
        for pod in store.list("Pod", workload["metadata"]["namespace"])
        if any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences", []))
    ]


def _is_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _pod(
    workload: dict[str, Any], pod_name: str, node_name: str | None, *, ready: bool, now: str
) -> dict[str, Any]:
    template = copy.deepcopy(workload["spec"]["template"])
    meta = workload["metadata"]
    labels = {
        **template.get("metadata", {}).get("labels", {}),
        _hash_label(workload["kind"]): template_hash(workload),
    }
    spec = template["spec"]
    if node_name:
        spec["nodeName"] = node_name
    readiness = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": KINDS[workload["kind"]][0],
                    "kind": workload["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": readiness, "lastTransitionTime": now},
                {"type": "Ready", "status": readiness, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "ready": ready,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in spec["containers"]
            ],
        },
    }


def sync_workload_pods(
    store: KubeStore, workload_key: ObjectKey, *, fallback_node_count: int, new_pods_ready: bool
) -> None:
    """Replace Pods of an older template, add Pods for new replicas or nodes, drop extra ones,
    then write the workload's status. Pods already on the current template are left as they are."""
    workload = store.get(*workload_key)
    if workload is None:
        return
    wanted = dict(_pod_slots(store, workload, fallback_node_count))
    for pod in _owned_pods(store, workload):
        pod_name = pod["metadata"]["name"]
        if pod_name in wanted:
            del wanted[pod_name]
        else:
            store.delete("Pod", pod["metadata"]["namespace"], pod_name)
    now = store.clock_now()
    for pod_name, node_name in wanted.items():
        store.put(_pod(workload, pod_name, node_name, ready=new_pods_ready, now=now), POD_FIELD_MANAGER)
    refresh_workload_status(store, workload_key, fallback_node_count=fallback_node_count)


def refresh_workload_status(store: KubeStore, workload_key: ObjectKey, *, fallback_node_count: int) -> None:
    workload = store.get(*workload_key)
    if workload is None:
        return
    pods = _owned_pods(store, workload)
    revision = template_hash(workload)
    updated = [p for p in pods if p["metadata"]["labels"].get(_hash_label(workload["kind"])) == revision]
    ready = [p for p in pods if _is_ready(p)]
    generation = workload["metadata"].get("generation", 1)
    if workload["kind"] == "Deployment":
        status = _deployment_status(workload, len(pods), len(updated), len(ready), generation)
    else:
        desired = len(_pod_slots(store, workload, fallback_node_count))
        status = {
            "observedGeneration": generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": len(pods),
            "numberMisscheduled": 0,
            "numberReady": len(ready),
            "updatedNumberScheduled": len(updated),
            "numberAvailable": len(ready),
            "numberUnavailable": max(0, desired - len(ready)),
        }
    store.update_status(*workload_key, status)


def _deployment_status(
    deployment: dict[str, Any], pods: int, updated: int, ready: int, generation: int
) -> dict[str, Any]:
    desired = int(deployment["spec"].get("replicas", 1))
    max_unavailable = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable", 1)
    tolerated = max_unavailable if isinstance(max_unavailable, int) else 1
    return deployment_status(
        desired=desired, pods=pods, updated=updated, ready=ready, generation=generation, tolerated=tolerated
    )


def deployment_status(
    *, desired: int, pods: int, updated: int, ready: int, generation: int, tolerated: int
) -> dict[str, Any]:
    """A Deployment's status as its controller writes it (`tolerated`: pods it may be short)."""
    available = ready >= desired - tolerated
    complete = updated == desired and ready == desired
    return {
        "observedGeneration": generation,
        "replicas": pods,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, desired - ready),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            },
        ],
    }


def refresh_pdb_status(store: KubeStore, namespace: str, name: str) -> None:
    pdb = store.get("PodDisruptionBudget", namespace, name)
    if pdb is None:
        return
    selector = pdb["spec"].get("selector", {}).get("matchLabels", {})
    pods = store.list("Pod", namespace, labels=selector)
    healthy = sum(1 for pod in pods if _is_ready(pod))
    max_unavailable = pdb["spec"].get("maxUnavailable")
    desired_healthy = max(0, len(pods) - max_unavailable) if isinstance(max_unavailable, int) else len(pods)
    store.update_status(
        "PodDisruptionBudget",
        namespace,
        name,
        {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "expectedPods": len(pods),
            "currentHealthy": healthy,
            "desiredHealthy": desired_healthy,
            "disruptionsAllowed": max(0, healthy - desired_healthy),
        },
    )


def sync_addon_pods(
    store: KubeStore, addon_name: str, *, fallback_node_count: int, new_pods_ready: bool
) -> None:
    """Bring an add-on's Pods and statuses in line with its workload spec and the cluster's nodes."""
    for workload_key in ADDON_WORKLOADS[addon_name]:
        sync_workload_pods(
            store, workload_key, fallback_node_count=fallback_node_count, new_pods_ready=new_pods_ready
        )
    for kind, namespace, name in ADDON_OBJECTS[addon_name]:
        if kind == "PodDisruptionBudget":
            refresh_pdb_status(store, namespace, name)
