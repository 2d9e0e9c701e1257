"""``asya ui``: a local operations page (mesh graph, records, traces, replay) served on loopback by the CLI."""
