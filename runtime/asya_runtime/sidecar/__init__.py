"""The SQS sidecar (``asya-sidecar``): moves envelopes between actor queues around the handler, and runs the sinks."""
