"""A real Kubernetes control plane on loopback: kube-apiserver, controller-manager, scheduler, etcd, KWOK and KEDA.

Built from the Go module proxy (``build.py``), started and stopped by ``asya kube up`` / ``down``
(``control_plane.py``), with nodes shaped like the stack's pools (``nodes.py``). What it proves and what it cannot:
docs/kube.md.
"""
