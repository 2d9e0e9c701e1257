"""``ResultBucket``: the mesh's S3 bucket for final envelopes — encrypted, private, TLS-only, versioned."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, child
from asya_pulumi.iam import deny_insecure_transport
from asya_pulumi.spec.limits import result_bucket_prefix


class ResultBucket(pulumi.ComponentResource):
    """Versioning keeps an overwritten ``{status}/{id}.json`` (a redelivery) recoverable."""

    bucket: aws.s3.Bucket

    def __init__(
        self, resource_name: str, *, namespace: str, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None
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
        aws.s3.BucketVersioning(
            f"{resource_name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child(self),
        )
        aws.s3.BucketPolicy(
            f"{resource_name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(deny_insecure_transport(resources=[arn, f"{arn}/*"], service="s3"))
            ),
            opts=child(self),
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
