"""asya runtime: the sidecar that moves envelopes between SQS queues, the sinks, and the handler server."""
