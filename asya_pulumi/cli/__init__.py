"""The ``asya`` command: ``dev``, ``send``, ``status``, ``dlq redrive`` and ``render`` (see docs/cli.md)."""
