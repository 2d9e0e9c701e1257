"""The hardened pod and namespace under mocks: credentials only in the sidecar, default-deny NetworkPolicy, Pod
Security ``restricted``, a PodDisruptionBudget per actor, safe-to-evict for calls longer than the autoscaler waits.

The credential test runs botocore's real credential chain on the handler container's environment after the Pod
Identity webhook's mutation, simulated from its source (aws/amazon-eks-pod-identity-webhook, ``addEnvToContainer``:
it skips containers named in ``eks.amazonaws.com/skip-containers`` and adds the two container-credential variables
only to a container that defines neither). The same simulation run on the sidecar reaches the Pod Identity agent,
so the simulation is not what keeps the handler's credentials away.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.session
import botocore.utils
import pytest
from infra_mocks import REGION, Deployment

from asya_pulumi.checks.mocked import integers_restored
from asya_pulumi.checks.validate import validate_objects
from asya_pulumi.components import ActorMesh, AsyaCluster
from asya_pulumi.components.network_policy import POLICY_NAME, MeshNetworkPolicy, network_policy_spec
from asya_pulumi.objects import pod
from asya_pulumi.spec import AsyncActorSpec, ClusterSpec, MeshSpec
from asya_pulumi.spec.eks_versions import DEFAULT_KUBERNETES_VERSION
from asya_runtime.config import SidecarConfig
from asya_runtime.resiliency import Resiliency

AGENT_URI = "http://169.254.170.23/v1/credentials"
TOKEN_VOLUME = "eks-pod-identity-token"
TOKEN_MOUNT = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
SLOW = {"name": "slow", "image": "slow:1", "handler": "h.slow", "resiliency": {"actorTimeout": "10m"}}
QUICK = {"name": "quick", "image": "quick:1", "handler": "h.quick", "resiliency": {"actorTimeout": "30s"}}
MESH = {"namespace": "hard", "actors": [SLOW, QUICK], "routes": {"go": ["quick", "slow"]},
        "gateway": {"auth": {"issuer": "https://issuer.example.com", "audience": "asya-gateway"}}}


def build_mesh(deployment: Deployment, **kwargs: Any) -> None:
    spec = MeshSpec.model_validate(MESH)
    deployment.run(lambda: ActorMesh("hard", spec=spec, cluster_name="c1", **kwargs).namespace)


def pod_template(deployment: Deployment, actor: str) -> dict[str, Any]:
    template: dict[str, Any] = deployment.one("kubernetes:apps/v1:Deployment", f"hard-{actor}-deployment").inputs[
        "spec"
    ]["template"]
    return template


def containers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in template["spec"]["containers"]}


# --- credentials only in the sidecar -------------------------------------------------------------------------------


def webhook_mutates(template: dict[str, Any], *, honour_skip: bool) -> dict[str, list[dict[str, str]]]:
    """Each container's env after the Pod Identity webhook (and the volume mounts it adds), from its source."""
    skipped: set[str] = set()
    if honour_skip:
        skipped = set(template["metadata"]["annotations"].get(pod.POD_IDENTITY_SKIP_CONTAINERS, "").split(","))
    mutated = {}
    for container in template["spec"]["containers"]:
        env = list(container.get("env", []))
        if container["name"] not in skipped:
            names = {e["name"] for e in env}
            if not names & {"AWS_REGION", "AWS_DEFAULT_REGION"}:
                env += [{"name": "AWS_DEFAULT_REGION", "value": REGION}, {"name": "AWS_REGION", "value": REGION}]
            if not names & {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}:
                env += [
                    {"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": AGENT_URI},
                    {"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": f"{TOKEN_MOUNT}/{TOKEN_VOLUME}"},
                ]
        mutated[container["name"]] = env
    return mutated


def resolve_credentials(
    env: list[dict[str, str]], *, home: Path, token_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[Any]]:
    """Run botocore's default chain on ``env`` (as the kubelet sets it: a later duplicate wins); no network.

    Returns what the chain produced ("none", "error: ...", "credentials: <method>") and the addresses it tried to
    connect to (every connection is refused, so nothing leaves this machine).
    """
    environ = {e["name"]: e["value"].replace(TOKEN_MOUNT, str(token_dir)) for e in env if "value" in e}
    environ["HOME"] = str(home)  # the pod's HOME is a fresh emptyDir: no ~/.aws
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise ConnectionRefusedError(f"test: no network ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(botocore.utils.ContainerMetadataFetcher, "SLEEP_TIME", 0)
    with mock.patch.dict(os.environ, environ, clear=True):
        try:
            credentials = botocore.session.Session().get_credentials()
        except Exception as exc:  # botocore raises on a credentials source it cannot use: the chain stops there
            return f"error: {type(exc).__name__}: {exc}", attempts
    return ("none" if credentials is None else f"credentials: {credentials.method}"), attempts


@pytest.mark.parametrize("honour_skip", [True, False], ids=["webhook-honours-skip", "webhook-ignores-skip"])
def test_the_handler_container_finds_no_aws_credentials(
    deployment: Deployment, honour_skip: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_mesh(deployment)
    template = pod_template(deployment, "quick")
    assert template["metadata"]["annotations"][pod.POD_IDENTITY_SKIP_CONTAINERS] == pod.HANDLER_CONTAINER
    token_dir = tmp_path / "token"
    token_dir.mkdir()
    (token_dir / TOKEN_VOLUME).write_text("projected-service-account-token")
    mutated = webhook_mutates(template, honour_skip=honour_skip)
    home = tmp_path / "home"
    home.mkdir()

    handler, handler_attempts = resolve_credentials(
        mutated["handler"], home=home, token_dir=token_dir, monkeypatch=monkeypatch
    )
    assert not handler.startswith("credentials"), handler
    assert handler_attempts == [], "the handler's SDK tried to reach a credentials endpoint"

    # The same chain on the sidecar goes to the Pod Identity agent with the token: that is where its credentials are.
    sidecar, sidecar_attempts = resolve_credentials(
        mutated["sidecar"], home=home, token_dir=token_dir, monkeypatch=monkeypatch
    )
    assert sidecar.startswith("error") and ("169.254.170.23", 80) in sidecar_attempts, (sidecar, sidecar_attempts)


def test_credential_blockers_are_only_in_the_handler_and_cannot_be_overridden(deployment: Deployment) -> None:
    build_mesh(deployment)
    for actor in ("slow", "quick"):
        by_name = containers(pod_template(deployment, actor))
        handler_env = {e["name"]: e["value"] for e in by_name["handler"]["env"]}
        assert {k: handler_env[k] for k in pod.HANDLER_CREDENTIAL_BLOCKERS} == pod.HANDLER_CREDENTIAL_BLOCKERS
        sidecar_env = {e["name"] for e in by_name["sidecar"]["env"]}
        assert not sidecar_env & set(pod.HANDLER_CREDENTIAL_BLOCKERS)
    # Sinks have no handler: nothing to skip.
    sink = deployment.one("kubernetes:apps/v1:Deployment", "hard-success-sink-deployment").inputs["spec"]["template"]
    assert pod.POD_IDENTITY_SKIP_CONTAINERS not in sink["metadata"]["annotations"]
    spec = AsyncActorSpec.model_validate({**QUICK, "env": {"AWS_EC2_METADATA_DISABLED": "false"}})
    with pytest.raises(ValueError, match=r"env \['AWS_EC2_METADATA_DISABLED'\] is set by the platform .* remove it"):
        pod.handler_container(spec=spec)


# --- Pod Security restricted ---------------------------------------------------------------------------------------

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                      "secret"}


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """Pod Security Standards ``restricted`` (as of v1.35), every control, on one pod spec."""
    problems = []
    pod_security = pod_spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            problems.append(key)
    for volume in pod_spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {kinds}")
    for container in pod_spec["containers"] + pod_spec.get("initContainers", []):
        name, security = container["name"], container.get("securityContext", {})
        if security.get("privileged"):
            problems.append(f"{name}: privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities must drop ALL")
        if set(security.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
        if any(p.get("hostPort") for p in container.get("ports", [])):
            problems.append(f"{name}: hostPort")
    if any("hostPath" in v for v in pod_spec.get("volumes", [])):
        problems.append("hostPath volume")
    return problems


def test_mesh_namespace_enforces_restricted_and_every_pod_complies(deployment: Deployment) -> None:
    build_mesh(deployment)
    (namespace,) = deployment.of_type("kubernetes:core/v1:Namespace")
    labels = namespace.inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        # pinned to the cluster's default minor (asya_pulumi/spec/eks_versions.py), so it moves with it
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == f"v{DEFAULT_KUBERNETES_VERSION}"
    pods = [d.inputs["spec"]["template"]["spec"] for d in deployment.of_type("kubernetes:apps/v1:Deployment")]
    assert len(pods) == 5  # two actors, two sinks, the gateway
    for pod_spec in pods:
        assert restricted_violations(pod_spec) == []
        # ...and still after the Pod Identity webhook adds its projected token volume.
        token = {"name": TOKEN_VOLUME, "projected": {"sources": []}}
        with_token = {**pod_spec, "volumes": [*pod_spec["volumes"], token]}
        assert restricted_violations(with_token) == []
    # The checker is not vacuous: a root, privileged container fails it.
    bad = {"containers": [{"name": "x", "securityContext": {"privileged": True, "runAsUser": 0}}],
           "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}
    assert len(restricted_violations(bad)) >= 5


def test_pod_security_can_be_switched_off(deployment: Deployment) -> None:
    build_mesh(deployment, pod_security=None, network_policy=None)
    (namespace,) = deployment.of_type("kubernetes:core/v1:Namespace")
    assert not any(k.startswith("pod-security") for k in namespace.inputs["metadata"]["labels"])
    assert deployment.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy") == []


# --- NetworkPolicy -------------------------------------------------------------------------------------------------


def test_default_deny_network_policy_lets_the_sidecar_reach_aws_and_dns_only(deployment: Deployment) -> None:
    build_mesh(deployment)
    (record,) = [p for p in deployment.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if p.inputs["metadata"]["name"] == POLICY_NAME]
    policy = record.inputs
    assert policy["metadata"]["namespace"] == "hard"
    spec = policy["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec.get("ingress", []) == []  # no monitoring namespace configured: nothing gets in
    dns, https, agent = spec["egress"]
    assert dns["to"] == [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert https == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
                     "ports": [{"protocol": "TCP", "port": 443}]}
    assert agent == {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}
    # IMDS is reachable through no rule, on any port.
    imds = ipaddress.ip_address("169.254.169.254")
    for rule in spec["egress"]:
        for peer in rule["to"]:
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                inside = imds in ipaddress.ip_network(block["cidr"])
                assert not inside or "169.254.169.254/32" in block.get("except", []), rule
    assert validate_objects([integers_restored(record.inputs)]) == []


def test_network_policy_is_configurable_and_checked() -> None:
    narrowed = network_policy_spec(MeshNetworkPolicy(
        metrics_from={"kubernetes.io/metadata.name": "monitoring"}, egress_cidrs=["10.40.0.0/16"]
    ))
    assert narrowed["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": 9100}],
    }]
    # A VPC range does not contain IMDS: no except (Kubernetes refuses an except outside its cidr).
    assert narrowed["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.40.0.0/16"}}]
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "p", "namespace": "n"}, "spec": narrowed}
    assert validate_objects([obj]) == []
    with pytest.raises(ValueError, match=r"egress_cidrs: '10.40.0.1/16' is not a CIDR block .* write e.g."):
        MeshNetworkPolicy(egress_cidrs=["10.40.0.1/16"])
    with pytest.raises(ValueError, match="egress_cidrs is empty"):
        MeshNetworkPolicy(egress_cidrs=[])
    with pytest.raises(ValueError, match="metrics_from is empty, which would select every namespace"):
        MeshNetworkPolicy(metrics_from={})


def test_network_policy_lets_the_pods_reach_an_otlp_collector_only_when_asked() -> None:
    assert all(rule["ports"][0]["port"] != 4317 for rule in network_policy_spec(MeshNetworkPolicy())["egress"])
    spec = network_policy_spec(MeshNetworkPolicy(otlp_to={"kubernetes.io/metadata.name": "observability"}))
    assert spec["egress"][-1] == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
        "ports": [{"protocol": "TCP", "port": 4317}],
    }
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "p", "namespace": "n"}, "spec": spec}
    assert validate_objects([obj]) == []
    with pytest.raises(ValueError, match="otlp_to is empty, which would select every namespace"):
        MeshNetworkPolicy(otlp_to={})
    with pytest.raises(ValueError, match="otlp_port is 0, outside 1-65535"):
        MeshNetworkPolicy(otlp_to={"team": "obs"}, otlp_port=0)


def test_asya_cluster_turns_on_the_vpc_cni_network_policy_agent(deployment: Deployment) -> None:
    spec = ClusterSpec.model_validate({"name": "np", "subnetIds": ["subnet-a", "subnet-b"]})
    deployment.run(lambda: AsyaCluster("np", spec=spec, region=REGION).kubeconfig)
    addon = deployment.one("aws:eks/addon:Addon", "np-vpc-cni")
    assert addon.inputs["addonName"] == "vpc-cni"
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"


# --- disruption: PodDisruptionBudget and safe-to-evict -------------------------------------------------------------


def test_every_actor_and_sink_has_a_disruption_budget_of_one(deployment: Deployment) -> None:
    build_mesh(deployment)
    budgets = {r.inputs["metadata"]["name"]: r.inputs for r in deployment.of_type(
        "kubernetes:policy/v1:PodDisruptionBudget")}
    assert sorted(budgets) == ["asya-gateway", "error-sink", "quick", "slow", "success-sink"]
    deployments = {d.inputs["metadata"]["name"]: d for d in deployment.of_type("kubernetes:apps/v1:Deployment")}
    for name, budget in budgets.items():
        assert budget["spec"]["maxUnavailable"] == 1 and "minAvailable" not in budget["spec"]
        template = deployments[name].inputs["spec"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == template["selector"]["matchLabels"]
        assert selector.items() <= template["template"]["metadata"]["labels"].items()
    assert validate_objects(deployment.kubernetes_objects()) == []


def test_calls_longer_than_the_autoscaler_waits_block_its_eviction(deployment: Deployment) -> None:
    build_mesh(deployment)
    slow, quick = pod_template(deployment, "slow"), pod_template(deployment, "quick")
    assert slow["spec"]["terminationGracePeriodSeconds"] > pod.CLUSTER_AUTOSCALER_MAX_GRACE_S
    assert slow["metadata"]["annotations"][pod.SAFE_TO_EVICT] == "false"
    assert quick["spec"]["terminationGracePeriodSeconds"] <= pod.CLUSTER_AUTOSCALER_MAX_GRACE_S
    assert pod.SAFE_TO_EVICT not in quick["metadata"]["annotations"]
    # The boundary follows the sidecar's shutdown budget: the longest timeout whose grace still fits is safe.
    limit = pod.CLUSTER_AUTOSCALER_MAX_GRACE_S
    fits = [t for t in range(500, 620) if pod.termination_grace_seconds(config(t)) <= limit]
    assert pod.evicts_safely(config(max(fits))) and not pod.evicts_safely(config(max(fits) + 1))


def config(actor_timeout: int) -> SidecarConfig:
    resiliency = Resiliency.model_validate({"actorTimeout": actor_timeout})
    return SidecarConfig(actor="a", namespace="n", resiliency=resiliency)


def test_every_container_has_probes_a_pull_policy_and_a_cpu_limit(deployment: Deployment) -> None:
    build_mesh(deployment)
    for record in deployment.of_type("kubernetes:apps/v1:Deployment"):
        for container in record.inputs["spec"]["template"]["spec"]["containers"]:
            assert container["imagePullPolicy"] == "Always"
            assert container["readinessProbe"] and container["livenessProbe"]
            assert "cpu" in container["resources"]["limits"], (record.name, container["name"])
    # No CPU limit in the spec: 4 × the request, at least one CPU; the spec's own limit is kept.
    assert pod.handler_cpu_limit(request="250m") == "1000m"
    assert pod.handler_cpu_limit(request="2") == "8000m"
    assert pod.handler_cpu_limit(request=None) == "1000m"
    limited = AsyncActorSpec.model_validate({**QUICK, "resources": {"limits": {"cpu": "3", "memory": "1Gi"}}})
    assert pod.handler_container(spec=limited)["resources"]["limits"]["cpu"] == "3"


def test_the_gateway_takes_only_its_port_in_and_is_reached_through_its_service(deployment: Deployment) -> None:
    """The gateway's NetworkPolicy adds ingress on TCP 8080 to its pods alone (the mesh's default-deny keeps the
    rest); its Service is ClusterIP, port 80 onto that port; the pod probes /health there."""
    build_mesh(deployment)
    (policy,) = [p.inputs for p in deployment.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                 if p.inputs["metadata"]["name"] == "asya-gateway"]
    (service,) = [s.inputs for s in deployment.of_type("kubernetes:core/v1:Service")]
    gateway = next(d.inputs for d in deployment.of_type("kubernetes:apps/v1:Deployment")
                   if d.inputs["metadata"]["name"] == "asya-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["securityContext"] == pod.CONTAINER_SECURITY
    assert gateway["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert validate_objects([integers_restored(o) for o in (policy, service, gateway)]) == []
