"""Local mode: the embedded broker and actors as local processes (used by ``asya dev``, the benchmarks and tests)."""

from asya_pulumi.local.broker import BrokerError, LocalBroker, broker_python, free_port

__all__ = ["BrokerError", "LocalBroker", "broker_python", "free_port"]
