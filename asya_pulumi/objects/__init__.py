"""Plain data the components render: Kubernetes objects, IAM documents, queue attributes, labels — no Pulumi.

Each module is pure functions of the typed specs that return dicts (or JSON text), so the Pulumi components,
``asya dev``, ``asya render`` and the tests all build the same objects, and none of this imports a Pulumi SDK:

- :mod:`~asya_pulumi.objects.labels` — the labels and tags every actor, sink and mesh object carries;
"""
