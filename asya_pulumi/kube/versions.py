"""Which upstream releases the local control plane runs, and which Go packages build them.

One row per tool. The versions are not free choices:

* Kubernetes runs at the stacks' EKS minor (``DEFAULT_KUBERNETES_VERSION``), at the patch pinned here, so the
  apiserver that admits our objects is the one EKS would run.
* KEDA runs at the app version of the Helm chart the ``Keda`` component pins (chart 2.18.1 is KEDA 2.18.1), so the
  webhook and the scaler that decide replicas here are the ones ``pulumi up`` installs.
* etcd 3.6: Debian's 3.4.23 is too old for 1.35's watch-progress requests.
* KWOK plays the kubelet: it marks Nodes ready and Pods running without running a container.

Each tool is built from a small wrapper module under ``gomod/<tool>/`` (its ``go.mod``, the ``go.sum`` that pins every
dependency's hash, and one Go file naming the packages). The wrappers exist because ``go install pkg@version`` refuses
modules with ``replace`` directives: k8s.io/kubernetes replaces its staging modules with ``./staging`` (absent from the
module zip), so the wrapper points them at the published ``k8s.io/*`` v0.<minor>.<patch> modules; KEDA's own replace
block is copied verbatim. ``scripts/kube-pin`` rewrites a wrapper for a new version.
"""

from __future__ import annotations

from dataclasses import dataclass

from asya_pulumi.components import observability
from asya_pulumi.components.karpenter import KARPENTER_CHART
from asya_pulumi.components.keda import KEDA_CHART_VERSION
from asya_pulumi.spec.eks_versions import DEFAULT_KUBERNETES_VERSION

#: The Kubernetes patch release built for each EKS minor the local control plane can run.
KUBERNETES_PATCHES: dict[str, str] = {"1.35": "v1.35.4"}

KUBERNETES_VERSION = KUBERNETES_PATCHES[DEFAULT_KUBERNETES_VERSION]
KEDA_VERSION = f"v{KEDA_CHART_VERSION}"
ETCD_VERSION = "v3.6.17"
KWOK_VERSION = "v0.8.0"


@dataclass(frozen=True)
class GoTool:
    """One upstream project as the control plane builds it.

    ``packages`` maps each binary's name to the Go package whose ``main`` it is (``"."`` for the wrapper's own
    ``main.go``); ``ldflags`` are extra ``-X`` settings (Kubernetes reads its own version from them).
    """

    name: str
    module: str
    version: str
    packages: dict[str, str]
    ldflags: tuple[str, ...] = ()


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    major, minor, _ = version.lstrip("v").split(".")
    base = "k8s.io/component-base/version"
    return (f"-X {base}.gitVersion={version}", f"-X {base}.gitMajor={major}", f"-X {base}.gitMinor={minor}",
            f"-X {base}.gitTreeState=clean")


TOOLS: dict[str, GoTool] = {
    tool.name: tool
    for tool in (
        GoTool(
            name="kubernetes", module="k8s.io/kubernetes", version=KUBERNETES_VERSION,
            packages={
                "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
                "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
                "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            },
            ldflags=_kubernetes_ldflags(KUBERNETES_VERSION),
        ),
        GoTool(name="etcd", module="go.etcd.io/etcd/server/v3", version=ETCD_VERSION, packages={"etcd": "."}),
        GoTool(name="kwok", module="sigs.k8s.io/kwok", version=KWOK_VERSION,
               packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
        GoTool(
            name="keda", module="github.com/kedacore/keda/v2", version=KEDA_VERSION,
            packages={
                "keda-operator": "github.com/kedacore/keda/v2/cmd/operator",
                "keda-adapter": "github.com/kedacore/keda/v2/cmd/adapter",
                "keda-webhooks": "github.com/kedacore/keda/v2/cmd/webhooks",
            },
        ),
    )
}


@dataclass(frozen=True)
class CrdSource:
    """Upstream CRD manifests inside one Go module at one version: what the control plane installs."""

    module: str
    version: str
    paths: tuple[str, ...]


#: Karpenter's Helm chart installs the CRDs of the AWS provider's module (it carries karpenter.sh's too).
KARPENTER_VERSION = f"v{KARPENTER_CHART[1]}"
#: The Prometheus operator release whose PodMonitor and PrometheusRule the observability component renders (one pin:
#: asya_pulumi/components/observability.py, which the JSON Schemas in asya_pulumi/schemas are generated at too).
PROMETHEUS_OPERATOR_VERSION = f"v{observability.PROMETHEUS_OPERATOR_VERSION}"

CRD_SOURCES: tuple[CrdSource, ...] = (
    # every CRD of KEDA's release: its operator waits for each kind's cache (eventing.keda.sh's too) and exits
    # when one is missing
    CrdSource("github.com/kedacore/keda/v2", KEDA_VERSION, (
        *(f"config/crd/bases/keda.sh_{plural}.yaml"
          for plural in ("scaledobjects", "scaledjobs", "triggerauthentications", "clustertriggerauthentications")),
        *(f"config/crd/bases/eventing.keda.sh_{plural}.yaml"
          for plural in ("cloudeventsources", "clustercloudeventsources")))),
    CrdSource("github.com/aws/karpenter-provider-aws", KARPENTER_VERSION, tuple(
        f"pkg/apis/crds/{name}.yaml"
        for name in ("karpenter.sh_nodepools", "karpenter.sh_nodeclaims", "karpenter.k8s.aws_ec2nodeclasses"))),
    CrdSource("github.com/prometheus-operator/prometheus-operator", PROMETHEUS_OPERATOR_VERSION, tuple(
        f"example/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml"
        for plural in ("podmonitors", "servicemonitors", "prometheusrules"))),
)
