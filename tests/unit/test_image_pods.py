"""``asya_pulumi.images.pods.playable`` changes exactly what docs/runtime.md says podman needs, nothing else."""

from __future__ import annotations

import copy

from asya_pulumi.images.pods import POD_LABEL, playable

DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {"name": "a", "namespace": "m"},
    "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {
        "securityContext": {"runAsUser": 10001},
        "containers": [
            {"name": "handler", "image": "h:1", "command": ["python3", "/opt/asya/handler_server.py"],
             "imagePullPolicy": "Always", "env": [{"name": "ASYA_HANDLER", "value": "m.f"}],
             "volumeMounts": [{"name": "socket", "mountPath": "/var/run/asya"},
                              {"name": "handler-server", "mountPath": "/opt/asya", "readOnly": True}]},
            {"name": "sidecar", "image": "r:1@sha256:x", "command": ["asya-sidecar"], "imagePullPolicy": "Always",
             "ports": [{"name": "metrics", "containerPort": 9100}],
             "env": [{"name": "ASYA_ACTOR", "value": "a"},
                     {"name": "ASYA_METRICS_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
             "volumeMounts": [{"name": "socket", "mountPath": "/s"}]},
        ],
        "volumes": [{"name": "socket", "emptyDir": {"medium": "Memory"}},
                    {"name": "handler-server", "configMap": {"name": "asya-handler-server"}}],
    }}},
}


def test_playable_changes_only_what_podman_cannot_honour():
    original = copy.deepcopy(DEPLOYMENT)
    played = playable(deployment=DEPLOYMENT, pod_name="m-a", metrics_port=4321, runtime_env={"ASYA_SQS_ENDPOINT": "u"})
    assert original == DEPLOYMENT  # not modified
    spec = played["spec"]["template"]["spec"]
    handler, sidecar = spec["containers"]
    assert handler["command"] == original["spec"]["template"]["spec"]["containers"][0]["command"]
    assert handler["image"] == "h:1" and sidecar["image"] == "r:1@sha256:x"
    assert {c["imagePullPolicy"] for c in spec["containers"]} == {"IfNotPresent"}
    assert "ports" not in sidecar
    assert spec["volumes"][0] == {"name": "m-a-socket", "emptyDir": {"medium": "Memory"}}
    assert spec["volumes"][1]["name"] == "handler-server"  # a ConfigMap keeps its name
    assert [m["name"] for m in handler["volumeMounts"]] == ["m-a-socket", "handler-server"]
    assert handler["env"] == [{"name": "ASYA_HANDLER", "value": "m.f"}]
    assert sidecar["env"] == [
        {"name": "ASYA_ACTOR", "value": "a"},
        {"name": "ASYA_METRICS_HOST", "value": "127.0.0.1"},  # status.podIP: the host's, on the host network
        {"name": "ASYA_SQS_ENDPOINT", "value": "u"},
        {"name": "ASYA_METRICS_PORT", "value": "4321"},
        {"name": "ASYA_VERIFY_SENDERS", "value": "false"},  # a local broker names no real sender
    ]
    assert spec["securityContext"] == {"runAsUser": 10001}
    assert played["spec"]["template"]["metadata"]["labels"] == {"app": "a", POD_LABEL: "m-a"}
