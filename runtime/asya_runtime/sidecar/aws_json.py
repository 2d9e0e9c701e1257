"""AWS JSON-protocol requests (SQS on the sidecar's hot path, DynamoDB for the status store) without botocore's
per-call machinery.

Every message costs its sidecar about 0.3 SQS requests (a receive, a send and a delete per batch of ten), and
through an aiobotocore client each of them spent ~1 ms of CPU (docs/benchmarks.md, section 8): resolving the
endpoint from its rules, emitting ~20 events to its hooks, walking the service model to serialise the parameters
and parse the answer, wrapping aiohttp's request and response, and signing through ``email.message`` headers. For
SQS all of that yields a POST of ``json.dumps(parameters)`` with an ``X-Amz-Target`` header, answered by JSON in
the shape botocore returns. :class:`AwsJsonClient` sends that request — the same body and signed headers as the
aiobotocore client, byte for byte (``tests/runtime/test_sqs_json.py``) — for ~0.4 ms, and keeps botocore for
everything that needs to be right rather than fast:

* the endpoint, region, signing name and operation names come from an aiobotocore client created as usual;
* credentials come from the same session (Pod Identity, IRSA, environment...) and are asked for on every request,
  so they are refreshed when botocore would refresh them; the signature is botocore's algorithm
  (:mod:`asya_runtime.sidecar.sigv4`, checked against :class:`~botocore.auth.SigV4Auth`);
* an error answer is parsed by botocore's own parser into the :class:`~botocore.exceptions.ClientError` the
  client would raise (same ``Error.Code``, e.g. ``AWS.SimpleQueueService.NonExistentQueue``, same status).

What it does not do: retries (the caller retries, :mod:`asya_runtime.sidecar.aws`); botocore's telemetry headers
(``amz-sdk-invocation-id``, ``amz-sdk-request``, unsigned); blob values (a ``BinaryValue`` message attribute would
stay base64 text; the sidecar sends and reads string attributes only). HTTPS trusts ``AWS_CA_BUNDLE`` (botocore's
``ca_bundle`` setting) when set, else botocore's bundle; ``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` are read
once, when the client is made.
"""
from __future__ import annotations

import json
import ssl
import urllib.parse
import urllib.request
from typing import Any

import aiohttp
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.httpsession import get_cert_path
from botocore.parsers import create_parser

from asya_runtime.sidecar.sigv4 import SigV4Signer

__all__ = ["AwsJsonClient"]


class AwsJsonClient:
    """Calls of one JSON-protocol AWS service (SQS, DynamoDB) over one aiohttp session; made from an aiobotocore
    client of that service, which supplies what they go to.

    ``call("send_message_batch", {...})`` takes botocore's snake_case name and the API's own parameters, and
    returns what the aiobotocore client would (without ``ResponseMetadata``).
    """

    def __init__(
        self, *, client: Any, credentials: Any, user_agent: str, pool_size: int, connect_timeout_s: float,
        read_timeout_s: float, ca_bundle: str | None = None,
    ) -> None:
        if credentials is None:
            raise NoCredentialsError()
        meta = client.meta
        self._url = meta.endpoint_url.rstrip("/") + "/"
        self._service_model = meta.service_model
        if self._service_model.protocol != "json":  # botocore has spoken JSON to SQS since 1.31 (2023)
            protocol, name = self._service_model.protocol, self._service_model.service_name
            raise ValueError(f"AwsJsonClient needs botocore's JSON protocol, and {name} speaks {protocol!r}")
        self._signer = SigV4Signer(url=self._url, region=meta.region_name, service=self._service_model.signing_name)
        self._target_prefix = self._service_model.metadata["targetPrefix"]
        # What every request carries besides its target, as botocore's serialiser sets it.
        self._headers = {
            "Host": self._signer.host,
            "Content-Type": f"application/x-amz-json-{self._service_model.metadata['jsonVersion']}",
            "User-Agent": user_agent,  # never signed (botocore's rule)
        }
        if self._service_model.is_query_compatible:
            self._headers["x-amzn-query-mode"] = "true"
        self._operations: dict[str, str] = dict(meta.method_to_api_mapping)
        self._credentials = credentials
        self._error_parser = create_parser(self._service_model.protocol)
        ssl_context = ssl.create_default_context(cafile=get_cert_path(ca_bundle or True))
        self._http = aiohttp.ClientSession(
            # Idle connections are kept 12 s, as aiobotocore keeps them (aiohttp's own default is 15 s).
            connector=aiohttp.TCPConnector(limit=pool_size, ssl=ssl_context, keepalive_timeout=12.0),
            timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout_s, sock_read=read_timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
        )
        # The endpoint is fixed, so the proxy is looked up once (aiohttp's trust_env would look it up, and netrc,
        # in a thread per request).
        self._proxy = _env_proxy(self._url)

    async def close(self) -> None:
        await self._http.close()

    async def call(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        """One request: ``ClientError`` for an error answer (as botocore parses it), aiohttp's errors for transport."""
        operation = self._operations[api]
        body = json.dumps(params).encode()  # botocore's serialiser: the same text for the same dict
        headers = await self._signed_headers(operation, body)
        async with self._http.post(self._url, data=body, headers=headers, proxy=self._proxy) as response:
            raw = await response.read()
            if response.status == 200:
                parsed: dict[str, Any] = json.loads(raw) if raw else {}
                return parsed
            raise self._client_error(operation, status=response.status, headers=response.headers, body=raw)

    async def _signed_headers(self, operation: str, body: bytes) -> dict[str, str]:
        frozen = await self._credentials.get_frozen_credentials()  # refreshed when botocore would refresh them
        headers = {**self._headers, "X-Amz-Target": f"{self._target_prefix}.{operation}"}
        signed = self._signer.sign(headers=headers, body=body, credentials=frozen)
        signed["Accept-Encoding"] = "identity"  # as botocore asks, outside the signature: nothing to decompress
        return signed

    def _client_error(self, operation: str, *, status: int, headers: Any, body: bytes) -> ClientError:
        model = self._service_model.operation_model(operation)
        answer = {"status_code": status, "headers": headers, "body": body}
        parsed = self._error_parser.parse(answer, model.output_shape)
        # The error's own modeled members (e.g. DynamoDB's ``Item`` of ConditionalCheckFailedException with
        # ReturnValuesOnConditionCheckFailure), added as botocore's endpoint adds them.
        error_shape = self._service_model.shape_for_error_code(parsed.get("Error", {}).get("Code"))
        if error_shape is not None:
            parsed.update(self._error_parser.parse(answer, error_shape))
        return ClientError(parsed, operation)


def _env_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY`` / ``HTTP_PROXY`` name for ``url`` unless ``NO_PROXY`` exempts its host."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
