"""``asya dev``: run a pipeline locally and wait for its results — one command, in modules by step.

- :mod:`~asya_pulumi.cli.dev.command` — the command line (``add_parser``, ``run``);
- :mod:`~asya_pulumi.cli.dev.setup` — load the pipeline directory, the replicas and the inputs;
- :mod:`~asya_pulumi.cli.dev.start` — start the broker and the processes (no boto3 imported yet);
- :mod:`~asya_pulumi.cli.dev.session` — create the queues, send the inputs, wait for the run;
- :mod:`~asya_pulumi.cli.dev.run` — decide when the run is over (:func:`~asya_pulumi.cli.dev.run.watch_run`);
- :mod:`~asya_pulumi.cli.dev.watch` — ``--watch``: re-run on every change of the pipeline's files.

The package imports nothing, so ``asya --help`` pays only for the modules the chosen command needs.
"""
