"""``asya kube up|down|status``: the local Kubernetes control plane (:mod:`asya_pulumi.kube.control_plane`).

``up`` builds the binaries on first use (minutes, once; cached), starts what is not running and prints
``KUBECONFIG=<path>`` as its last line, so ``eval "$(asya kube up | tail -1)"`` points kubectl at it. Its Nodes
are the stack's pools: ``--stack-file stacks/Pulumi.dev.yaml`` reads that stack's ``asya:cluster``; without it,
:data:`LOCAL_CLUSTER` (two system nodes and a two-node GPU pool named ``gpu``, what the examples' GPU actors select).
A build or start that fails is one line naming the module or the component and the fix (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, report_error
from asya_pulumi.cli.output import add_json_option, emit
from asya_pulumi.extras import require
from asya_pulumi.links import docs

if TYPE_CHECKING:
    from asya_pulumi.spec import ClusterSpec

#: The cluster ``asya kube up`` shapes its Nodes after when no stack file is named.
LOCAL_CLUSTER = {"name": "local", "gpuPools": [{"name": "gpu", "minSize": 0, "maxSize": 2}]}
CLUSTER_KEY = "asya:cluster"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "kube", help="a local Kubernetes control plane with KEDA (up, down, status)",
        description="A real kube-apiserver, controller-manager, scheduler, etcd, KWOK (nodes without a kubelet) "
        f"and KEDA on loopback, built from Go sources once. {docs('kube.md')} says what it proves and what it cannot.",
    )
    parser.add_argument("--dir", type=Path, help="state directory (default: $ASYA_KUBE_DIR or "
                        "~/.cache/asya/kube/local)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start (or complete) the control plane; prints KUBECONFIG=<path> last")
    up.add_argument("--stack-file", type=Path, metavar="FILE",
                    help="shape the Nodes after this stack's asya:cluster (e.g. stacks/Pulumi.dev.yaml)")
    down = actions.add_parser("down", help="stop the control plane's processes (only its own)")
    down.add_argument("--purge", action="store_true", help="also delete its state: certificates, etcd data, logs")
    status = actions.add_parser("status", help="which components run, and the apiserver's /readyz")
    add_json_option(up, what="the kubeconfig's path")
    add_json_option(down, what="the components stopped")
    add_json_option(status, what="each component's state")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("kube", needed_by=f"asya kube {args.action}")
    from asya_pulumi.kube.control_plane import ControlPlane
    from asya_pulumi.kube.errors import KubeError

    plane = ControlPlane(args.dir)
    try:
        if args.action == "up":
            kubeconfig = plane.up(cluster=_cluster(args.stack_file), notice=sys.stderr)
            emit(args, data={"kubeconfig": str(kubeconfig)}, text=f"KUBECONFIG={kubeconfig}")
        elif args.action == "down":
            stopped = plane.down(purge=args.purge)
            emit(args, data={"stopped": list(stopped)},
                 text=f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
        else:
            report = plane.status()
            emit(args, data=dict(report), text="\n".join(f"{name:<24} {state}" for name, state in report.items()))
            return EXIT_OK if report.get("readyz", "").startswith("200") else EXIT_FAILED
    except KubeError as exc:
        return report_error(f"kube {args.action}: {exc}", code=EXIT_FAILED)
    return EXIT_OK


def _cluster(stack_file: Path | None) -> ClusterSpec:
    from pydantic import ValidationError

    from asya_pulumi.spec import ClusterSpec
    from asya_pulumi.spec.errors import describe, known_field_names

    document = LOCAL_CLUSTER
    if stack_file is not None:
        from asya_pulumi.cli.stack_config import read_stack_config

        config = read_stack_config(stack_file)
        if not isinstance(config.get(CLUSTER_KEY), dict):
            raise UsageError(f"{stack_file}: no {CLUSTER_KEY} mapping to shape the Nodes after")
        document = config[CLUSTER_KEY]
    try:
        return ClusterSpec.model_validate(document)
    except ValidationError as exc:
        problems = describe(exc, vocabulary=known_field_names([ClusterSpec]))
        raise UsageError(f"{stack_file}: {CLUSTER_KEY}: " + "; ".join(problems)) from None
