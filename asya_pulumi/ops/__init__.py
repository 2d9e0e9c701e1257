"""Operations on a running mesh — final records, an envelope's trace, replays — as a library.

The same functions serve the ``asya`` CLI (``asya trace``, ``asya replay``) and the web UI, against ``asya dev``'s
embedded broker and against AWS alike: every function takes boto3 clients (:mod:`asya_pulumi.cli.aws` builds them
for either) and returns data; none prints. A mistake the caller can fix (no such bucket, an unknown actor) raises
:class:`~asya_pulumi.ops.errors.OpsError` with a message that says the fix.

- :mod:`.records`: find final records in the mesh's bucket (recent ones, filtered; one envelope's, fan-out
  descendants included).
- :mod:`.trace`: an envelope's timeline from the hop history its records carry (``hops``, see
  ``asya_runtime.sidecar.hops``); an envelope not yet finished is reported in flight.
- :mod:`.replay`: select error records or DLQ messages, plan, dry-run, and send them again with attempts reset.
"""
