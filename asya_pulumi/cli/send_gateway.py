"""``asya send ... --gateway URL [--wait | --follow]``: one envelope through the front door (docs/gateway.md).

The gateway submits the envelope with a status record; ``--wait`` then prints its final payload and ``--follow``
prints each status and FLY event as it happens, both through :class:`asya_runtime.client.GatewayClient`. Exit
statuses: 0 succeeded (or submitted, without waiting), 1 failed or canceled or not finished within ``--timeout`` (the
reason on stderr), 2 the gateway refused the request (unknown route, bad payload: its own message), 4 the gateway
could not be reached.

ROUTE is a named route of the mesh, or one actor (Asya's ``?actor=`` form). With ``--mesh`` the command knows
which; without it a name is tried as a route first and, when the gateway knows no such route, as an actor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asya_pulumi.cli.errors import EXIT_AWS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, report_error
from asya_pulumi.cli.inputs import parse_payload_argument, parse_route_argument

if TYPE_CHECKING:
    from asya_runtime.client import EnvelopeStatus, Event, GatewayClient

#: The ``--wait`` limit beyond the envelope's own ``--timeout``: time for the gateway to record the failure.
WAIT_SLACK_S = 10.0


def add_gateway_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("through the front door (docs/gateway.md)")
    group.add_argument(
        "--gateway", metavar="URL", default=os.environ.get("ASYA_GATEWAY_URL") or None,
        help="submit through this gateway instead of to the first queue; `asya dev DIR --gateway` prints it "
        "(env ASYA_GATEWAY_URL)",
    )
    group.add_argument(
        "--gateway-token", metavar="TOKEN", default=os.environ.get("ASYA_GATEWAY_TOKEN") or None,
        help="bearer token for a gateway that requires one (env ASYA_GATEWAY_TOKEN)",
    )
    how = group.add_mutually_exclusive_group()
    how.add_argument("--wait", action="store_true", help="wait for the final payload and print it; exit 1 if the "
                     "envelope failed or was canceled")
    how.add_argument("--follow", action="store_true", help="print every status and FLY event until the envelope "
                     "is final, then its payload")
    group.add_argument("--timeout", type=float, metavar="S", help="the envelope's deadline in seconds (it fails "
                       "with a timeout after it); --wait/--follow give up shortly after")
    group.add_argument("--idempotency-key", metavar="KEY", help="the same key returns the same id; the pipeline "
                       "runs once")


def send_through_gateway(args: argparse.Namespace) -> int:
    """Submit, then wait or follow as asked; the exit status (see the module docstring)."""
    if not args.gateway:
        raise UsageError(
            f"{'--wait' if args.wait else '--follow'} goes through the gateway: pass --gateway URL or set "
            "ASYA_GATEWAY_URL (`asya dev DIR --gateway` prints it)"
        )
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: a deadline is a number of seconds above 0")
    target = _target(args)
    payload = parse_payload_argument(args.payload)
    from asya_runtime.client import GatewayClient, GatewayError, GatewayHTTPError, GatewayUnreachable, WaitTimeout

    try:
        with GatewayClient(args.gateway, token=args.gateway_token) as client:
            envelope_id = _submit(client, target=target, payload=payload, args=args)
            if not (args.wait or args.follow):
                _emit(args, {"id": envelope_id, **target}, text=envelope_id)
                return EXIT_OK
            limit = None if args.timeout is None else args.timeout + WAIT_SLACK_S
            if args.follow:
                final = _follow(client, envelope_id, args=args, limit=limit)
            else:
                final = client.wait(envelope_id, timeout=limit)
    except WaitTimeout as exc:
        return report_error(str(exc), code=EXIT_FAILED)
    except GatewayUnreachable as exc:
        return report_error(str(exc), code=EXIT_AWS)
    except GatewayHTTPError as exc:
        return report_error(str(exc), code=EXIT_USAGE if exc.status_code < 500 else EXIT_FAILED)
    except GatewayError as exc:
        return report_error(str(exc), code=EXIT_FAILED)
    return _report_final(args, final)


def _target(args: argparse.Namespace) -> dict[str, str]:
    """``{"route": NAME}`` or ``{"actor": NAME}`` from ROUTE (and ``--mesh``, when given)."""
    parsed = parse_route_argument(args.route)
    if not isinstance(parsed, str):
        raise UsageError(
            f"ROUTE {args.route!r}: through the gateway, ROUTE is a named route of the mesh or one actor (the "
            "gateway accepts no ad-hoc list of actors); name a route, or send directly without --gateway"
        )
    routes: Mapping[str, Sequence[str]] = {}
    actors: list[str] = []
    if getattr(args, "mesh", None):
        from asya_pulumi.cli.dev.setup import load_mesh

        mesh, _ = load_mesh(args.mesh, namespace=args.namespace)
        routes, actors = mesh.routes, [a.name for a in mesh.actors]
        if parsed not in routes and parsed not in actors:
            raise UsageError(f"ROUTE {parsed!r} is neither a route of the mesh (routes: "
                             f"{', '.join(sorted(routes)) or 'none'}) nor an actor")
    if parsed in actors and parsed not in routes:
        return {"actor": parsed}
    return {"route": parsed}


def _submit(client: GatewayClient, *, target: dict[str, str], payload: Any, args: argparse.Namespace) -> str:
    from asya_runtime.client import GatewayHTTPError

    def submit(*, route: str | None = None, actor: str | None = None) -> str:
        return client.submit(route=route, actor=actor, payload=payload, timeout=args.timeout,
                             idempotency_key=args.idempotency_key)

    if "actor" in target:
        return submit(actor=target["actor"])
    try:
        return submit(route=target["route"])
    except GatewayHTTPError as exc:
        if getattr(args, "mesh", None) or exc.status_code not in (400, 404, 422):
            raise
        try:  # without --mesh a name may be an actor (Asya's ?actor= form)
            return submit(actor=target["route"])
        except GatewayHTTPError:
            raise exc from None


def _follow(
    client: GatewayClient, envelope_id: str, *, args: argparse.Namespace, limit: float | None
) -> EnvelopeStatus:
    """Print each event (text, or one JSON object per line with ``--json``) until the terminal status."""
    import time

    from asya_runtime.client import StatusEvent

    print(envelope_id if not args.json else json.dumps({"id": envelope_id}), flush=True)
    deadline = None if limit is None else time.monotonic() + limit
    last: EnvelopeStatus | None = None
    for event in client.events(envelope_id, deadline=deadline):
        _print_event(args, event)
        if isinstance(event, StatusEvent):
            last = event.status
    if last is None or not last.terminal:  # the stream ended early: the record says how it ended
        return client.wait(envelope_id, timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
    return last


def _print_event(args: argparse.Namespace, event: Event) -> None:
    from asya_runtime.client import StatusEvent

    if isinstance(event, StatusEvent):
        status = event.status
        if args.json:
            line = json.dumps({"event": "status", **status.raw}, sort_keys=True)
        else:
            where = "".join(f" {k}={v}" for k, v in (("actor", status.actor), ("attempt", status.attempt),
                                                      ("progress", status.progress)) if v is not None)
            line = f"status {status.status}{where}"
    else:
        line = json.dumps({"event": "fly", **event.data}, sort_keys=True) if args.json else (
            f"fly {json.dumps(dict(event.data), sort_keys=True)}")
    print(line, flush=True)


def _report_final(args: argparse.Namespace, final: EnvelopeStatus) -> int:
    if args.json:
        print(json.dumps({"id": final.id, "status": final.status, "payload": final.payload,
                          "error": dict(final.error) if final.error else None}, indent=None if args.follow else 2))
    elif final.succeeded:
        print(json.dumps(final.payload, indent=2))
    if not final.succeeded:
        print(f"asya: error: envelope {final.id} {final.status}: {final.reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _emit(args: argparse.Namespace, data: Mapping[str, Any], *, text: str) -> None:
    print(json.dumps(dict(data), indent=2) if args.json else text)
