"""SQS and S3 clients for the CLI: a local endpoint (``--sqs-endpoint``) or real AWS (the default credential chain).

A local server accepts any credentials, so when an endpoint is given and the environment holds none, the clients use
``test``/``test`` instead of failing on a missing profile. Against AWS nothing is invented: boto3's own chain decides.

:func:`describe_aws_error` is the one place that turns what boto3 raises when it cannot talk to AWS (no or expired
credentials, an unreachable endpoint, an unknown region, access denied) into one line that names the fix; the entry
point (:mod:`asya_pulumi.cli.main`) prints that line instead of a traceback, for every command.
"""

from __future__ import annotations

import difflib
import os
import socket
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore import exceptions as boto_errors
from botocore.config import Config

#: Room for every sidecar poll, sink read and status call of a local mesh at once without pool warnings.
_POOL_SIZE = 32
#: Attempts per call of a long-running local mesh (a busy broker may drop a connection now and then).
MESH_ATTEMPTS = 5
#: Attempts per call of a one-shot command (status, send, dlq): an unreachable endpoint is reported in ~2 s, not ~6.
COMMAND_ATTEMPTS = 3
#: A TCP connect that takes longer is a black-holed endpoint (boto3's default waits 60 s, per attempt).
_CONNECT_TIMEOUT_S = 10
#: How long a one-shot command waits for its endpoint to take a TCP connection before saying it is unreachable:
#: botocore would retry a refused connection with backoff (3 attempts: ~6 s) before giving up.
REACH_TIMEOUT_S = 1.5

#: ClientError codes, as SQS, S3 and STS spell them, grouped by the fix they need.
_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation", "Forbidden"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_NOT_ACCEPTED = {
    "InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "InvalidSignatureException", "AuthFailure", "IncompleteSignature", "MissingAuthenticationToken",
    "InvalidToken", "InvalidSecurity",
}


@dataclass(frozen=True)
class Endpoints:
    """Where the mesh's queues and bucket live; ``None`` endpoints mean real AWS in ``region``."""

    region: str
    sqs_endpoint: str | None = None
    s3_endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        return self.sqs_endpoint is not None


def _credentials(endpoint: str | None) -> dict[str, str]:
    if endpoint is None or os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _config(*, attempts: int, **extra: Any) -> Config:
    return Config(
        max_pool_connections=_POOL_SIZE,
        connect_timeout=_CONNECT_TIMEOUT_S,
        retries={"max_attempts": attempts, "mode": "standard"},
        **extra,
    )


def sqs_client(endpoints: Endpoints, *, attempts: int = MESH_ATTEMPTS) -> Any:
    """A boto3 SQS client for ``endpoints``; ``attempts`` per call (throttling and dropped connections retried)."""
    return boto3.session.Session().client(
        "sqs",
        region_name=endpoints.region,
        endpoint_url=endpoints.sqs_endpoint,
        config=_config(attempts=attempts),
        **_credentials(endpoints.sqs_endpoint),
    )


def reachable(client: Any) -> Any:
    """``client``, once its endpoint took a TCP connection within :data:`REACH_TIMEOUT_S`; else botocore's
    ``EndpointConnectionError`` at once (worded by :func:`describe_aws_error`), so a one-shot command against a
    stopped broker or a mistyped region fails in under two seconds. Skipped when a proxy carries the requests (the
    endpoint itself may be unreachable from here then, and the proxy's answer is what counts) and when there are no
    credentials (botocore resolved them, or found none, when it made the client; that error comes first)."""
    if getattr(client._request_signer, "_credentials", None) is None:
        return client  # no credentials: the first call says so, which is the problem to fix first
    url = urllib.parse.urlsplit(client.meta.endpoint_url)
    host = url.hostname or ""
    if urllib.request.getproxies().get(url.scheme) and not urllib.request.proxy_bypass(host):
        return client
    try:
        socket.create_connection((host, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise boto_errors.EndpointConnectionError(endpoint_url=client.meta.endpoint_url, error=exc) from None
    return client


def _session_without_timestamp_parsing() -> boto3.session.Session:
    """A session whose responses keep timestamps as text: parsing ``LastModified`` of every key of a bucket listing
    with dateutil was the largest CPU cost of polling for results (measured with cProfile during a 2,000 burst)."""
    session = botocore.session.Session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return boto3.session.Session(botocore_session=session)


def s3_client(endpoints: Endpoints, *, attempts: int = MESH_ATTEMPTS) -> Any:
    """A boto3 S3 client for ``endpoints`` (path-style addressing, which local servers need); timestamps as text."""
    return _session_without_timestamp_parsing().client(
        "s3",
        region_name=endpoints.region,
        endpoint_url=endpoints.s3_endpoint,
        config=_config(attempts=attempts, s3={"addressing_style": "path"} if endpoints.s3_endpoint else {}),
        **_credentials(endpoints.s3_endpoint),
    )


def describe_aws_error(exc: BaseException, *, region: str | None, endpoint: str | None) -> str | None:
    """One line saying what went wrong talking to AWS (or the local endpoint) and how to fix it; ``None`` when
    ``exc`` is not such an error (a bug in asya, which keeps its traceback).

    ``region`` and ``endpoint`` are what the command used (``endpoint`` None: real AWS), so the line can tell an
    unknown region from a network problem and point at the option to change.
    """
    if isinstance(exc, boto_errors.ClientError):
        return _client_error(exc)
    if isinstance(exc, boto_errors.NoCredentialsError):
        return (
            "no AWS credentials found (environment, ~/.aws, SSO, instance role); run `aws configure` or "
            "`aws sso login`, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or pass --sqs-endpoint URL for a local mesh"
        )
    if isinstance(exc, boto_errors.PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    if isinstance(exc, boto_errors.ProfileNotFound):
        return f"{exc}; check AWS_PROFILE against `aws configure list-profiles`"
    if isinstance(exc, boto_errors.SSOError | boto_errors.SSOTokenLoadError | boto_errors.TokenRetrievalError):
        return f"the AWS SSO session is expired or missing ({exc}); run `aws sso login` and try again"
    if isinstance(exc, boto_errors.InvalidRegionError):
        return f"{region!r} is not an AWS region name (e.g. us-east-1); pass --region or set AWS_REGION"
    if isinstance(exc, boto_errors.ConnectionError | boto_errors.HTTPClientError):
        return _unreachable(exc, region=region, endpoint=endpoint)
    if isinstance(exc, boto_errors.BotoCoreError) and not isinstance(exc, boto_errors.ParamValidationError):
        return f"AWS client error: {exc}"  # a ParamValidationError is asya's own bug: keep its traceback
    return None


def _client_error(exc: boto_errors.ClientError) -> str:
    error = exc.response.get("Error", {})
    code, said = str(error.get("Code", "")), " ".join(str(error.get("Message", "")).split())
    aws_says = f" (AWS: {code}: {said})" if said else f" ({code})"
    if code in _DENIED:
        return (
            f"access denied: AWS refused {exc.operation_name}{aws_says}; use credentials allowed to call it "
            "(another AWS_PROFILE) or ask for that permission on the mesh's queues/bucket"
        )
    if code in _EXPIRED:
        return (
            f"the AWS credentials have expired{aws_says}; refresh them (`aws sso login`, or a new "
            "AWS_SESSION_TOKEN) and run again"
        )
    if code in _NOT_ACCEPTED:
        return (
            f"AWS does not accept these credentials{aws_says}; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
            "AWS_PROFILE (`aws sts get-caller-identity` shows which ones are used)"
        )
    return f"AWS refused {exc.operation_name}{aws_says}"


def _unreachable(exc: Exception, *, region: str | None, endpoint: str | None) -> str:
    url = getattr(exc, "kwargs", {}).get("endpoint_url") or endpoint or "AWS"
    if endpoint is not None:
        return (
            f"cannot reach {url} ({type(exc).__name__}); is the broker running? `asya dev DIR --keep-running` "
            "prints its endpoint: pass it as --sqs-endpoint (or ASYA_SQS_ENDPOINT)"
        )
    known = _known_regions()
    if region and known and region not in known:
        close = difflib.get_close_matches(region, sorted(known), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return f"unknown AWS region {region!r}; {hint}pass --region (or set AWS_REGION) to a region such as us-east-1"
    configured = region or boto3.session.Session().region_name  # what boto3 used when --region was not given
    which = f"region {configured!r}" if configured else "a region (none is set)"
    return (
        f"cannot reach {url} ({type(exc).__name__}); check the network and proxy (HTTPS_PROXY), "
        f"and that {which} is the mesh's (--region or AWS_REGION)"
    )


def _known_regions() -> set[str]:
    """Every region this botocore knows, over all partitions (a newer region than the installed botocore is absent,
    which is why this is asked only after a connection failed, never to refuse a region up front)."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("sqs", partition_name=partition))
    return regions
