"""Plain data the components render: Kubernetes objects, IAM documents, queue attributes, labels — no Pulumi.

Each module is pure functions of the typed specs that return dicts (or JSON text), so the Pulumi components,
``asya dev``, ``asya render`` and the tests all build the same objects, and none of this imports a Pulumi SDK:

- :mod:`~asya_pulumi.objects.pod` — the actor pod: containers, probes, security context, GPU scheduling;
- :mod:`~asya_pulumi.objects.scaling` — KEDA's ScaledObject and TriggerAuthentication;
- :mod:`~asya_pulumi.objects.iam` — the IAM policy and trust documents;
- :mod:`~asya_pulumi.objects.queue_settings` — an actor's queue attributes, derived once;
- :mod:`~asya_pulumi.objects.kubeconfig` — an EKS cluster's kubeconfig;
- :mod:`~asya_pulumi.objects.labels` — the labels and tags every actor, sink and mesh object carries.
"""
