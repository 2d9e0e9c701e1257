"""Local mode: a whole mesh on this machine — what ``asya dev``, the benchmarks and the tests all run.

Modules, each one job:

- :mod:`~asya_pulumi.local.plan` — which processes a mesh needs (handler server + sidecar per replica, the sinks),
  with environments rendered from the same typed configs the pods get;
- :mod:`~asya_pulumi.local.processes` — the supervisor that runs them and never gives up on a process that worked;
- :mod:`~asya_pulumi.local.process_group` — start a child in its own process group, stop it with its children;
- :mod:`~asya_pulumi.local.broker` — the embedded SQS + S3 server;
- :mod:`~asya_pulumi.local.queues` — the mesh's queues and bucket, with the settings ``pulumi up`` would give them;
- :mod:`~asya_pulumi.local.results` — reading the sinks' final records (:mod:`asya_pulumi.records`) as a run goes, when
  a run is complete, and sink-write counting;

One actor's process pair for tests of handlers (the project's and users') is published as :mod:`asya_pulumi.testing`.

Nothing here imports a Pulumi SDK (a test checks): local mode runs without the cloud SDKs loaded.
"""

from asya_pulumi.local.broker import BrokerError, LocalBroker, broker_python, free_port

__all__ = ["BrokerError", "LocalBroker", "broker_python", "free_port"]
