"""``ResultBucket``: the mesh's S3 bucket for final envelopes — encrypted, private, TLS-only, versioned, expiring.

Lifecycle (``ResultRetentionSpec``): a record expires ``expireAfterDays`` after it was written (versioning turns
that into a delete marker over a noncurrent version), noncurrent versions go ``noncurrentExpireAfterDays`` later,
the delete markers left with no version behind them are removed, and unfinished multipart uploads are aborted. So
nothing in the bucket outlives ``expireAfterDays + noncurrentExpireAfterDays`` days unless expiry is switched off.

Offloaded envelopes (claim-check, ``offload/``) have a rule of their own, whatever the retention: the sidecar
deletes each once consumed, so this rule is the backstop for those never consumed (a producer killed after
PutObject, a reference left in a DLQ). They expire a day after the DLQ's retention, so a dead-lettered reference
can still be redriven, and a deleted one's version (kept for a late duplicate delivery) a day after the delete.
Fan-in state (``fanin/``, runtime ``sidecar/fanin.py``) stays after its parent is finished (a late duplicate child
must still find the claim) and expires by a rule of its own, as long as offloaded envelopes.
Where rules overlap, S3 applies the shorter expiry: these win over the whole-bucket rule.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.objects.iam import deny_insecure_transport
from asya_pulumi.objects.queue_settings import DLQ_RETENTION_S
from asya_pulumi.spec import ResultRetentionSpec
from asya_pulumi.spec.limits import result_bucket_prefix
from asya_runtime.config import FANIN_PREFIX, OFFLOAD_PREFIX

#: Offloaded envelopes outlive the longest a reference can wait in a queue (the DLQ's retention) by a day.
OFFLOAD_EXPIRE_DAYS = DLQ_RETENTION_S // 86400 + 1
#: A consumed offloaded envelope's version stays readable this long for a late duplicate delivery.
OFFLOAD_NONCURRENT_DAYS = 1
#: Fan-in state (``fanin/``) must outlive a child that waits in a DLQ and is redriven, so that it still finds its
#: parent finished: the same day past the DLQ's retention.
FANIN_EXPIRE_DAYS = OFFLOAD_EXPIRE_DAYS


def lifecycle_rules(retention: ResultRetentionSpec) -> list[dict[str, object]]:
    """The bucket's lifecycle rules: two for the whole bucket (empty prefix filter), one for ``offload/`` and one
    for fan-in state (``fanin/``)."""
    whole_bucket = {"prefix": ""}
    versions: dict[str, object] = {
        "id": "expire-records",
        "status": "Enabled",
        "filter": whole_bucket,
        "noncurrent_version_expiration": {"noncurrent_days": retention.noncurrent_expire_after_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": retention.abort_multipart_after_days},
    }
    if retention.expire_after_days is not None:
        versions["expiration"] = {"days": retention.expire_after_days}
    # S3 refuses `days` and `expired_object_delete_marker` in one expiration: the markers get their own rule.
    markers: dict[str, object] = {
        "id": "remove-expired-delete-markers",
        "status": "Enabled",
        "filter": whole_bucket,
        "expiration": {"expired_object_delete_marker": True},
    }
    offloaded: dict[str, object] = {
        "id": "expire-offloaded-envelopes",
        "status": "Enabled",
        "filter": {"prefix": f"{OFFLOAD_PREFIX}/"},
        "expiration": {"days": OFFLOAD_EXPIRE_DAYS},
        "noncurrent_version_expiration": {"noncurrent_days": OFFLOAD_NONCURRENT_DAYS},
    }
    fanin_state: dict[str, object] = {
        "id": "expire-fanin-state",
        "status": "Enabled",
        "filter": {"prefix": f"{FANIN_PREFIX}/"},
        "expiration": {"days": FANIN_EXPIRE_DAYS},
        "noncurrent_version_expiration": {"noncurrent_days": OFFLOAD_NONCURRENT_DAYS},
    }
    return [versions, markers, offloaded, fanin_state]


class ResultBucket(AsyaComponent):
    """Versioning keeps an overwritten ``{status}/{id}.json`` (a redelivery) recoverable for a while.

    ``retention`` defaults to ``ResultRetentionSpec()``: records expire after 90 days, old versions 7 days later.
    """

    OUTPUTS = (
        ComponentOutput("bucket", "bucket_name", str, "The bucket's name."),
        ComponentOutput("arn", "arn", str, "The bucket's ARN."),
    )
    bucket: aws.s3.Bucket
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        namespace: str,
        tags: dict[str, str],
        retention: ResultRetentionSpec | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}ResultBucket", resource_name, None, opts)
        self.bucket = aws.s3.Bucket(
            resource_name, bucket_prefix=result_bucket_prefix(namespace=namespace), tags=tags, opts=child(self)
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{resource_name}-sse",
            bucket=self.bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}, "bucket_key_enabled": True}
            ],
            opts=child(self),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{resource_name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child(self),
        )
        aws.s3.BucketOwnershipControls(
            f"{resource_name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child(self),
        )
        versioning = aws.s3.BucketVersioning(
            f"{resource_name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child(self),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{resource_name}-lifecycle",
            bucket=self.bucket.id,
            rules=lifecycle_rules(retention or ResultRetentionSpec()),
            # Noncurrent-version rules need versioning on first (the AWS provider's documented order).
            opts=child(self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{resource_name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(deny_insecure_transport(resources=[arn, f"{arn}/*"], service="s3"))
            ),
            opts=child(self),
        )
        self.bucket_name, self.arn = self.bucket.bucket, self.bucket.arn
        self.register()
