"""The web client's static site: a private bucket the sharing API serves it from.

The site (``web/``, built by Vite into fixed file names) is served by the stack's own
REST API under ``/web/`` through an API Gateway S3 integration, so in ``ap-east-1`` it
sits behind the same regional endpoint as the API: the TLS 1.3-only security policy,
STRICT endpoint access, the stage's throttling and (phase 3) the WAF web ACL, and it is
the API's own origin (no CORS needed for the API, ``'self'`` in the policy). CloudFront
is global and would put the site's edge outside Hong Kong; an ALB would need a VPC, a
certificate and a target to serve files. See docs/web.md.

Guarantees:
- the bucket is private (all four public-access-block flags, owner-enforced, versioned,
  TLS-only bucket policy); only the API's reader role may read, and only ``site/*``;
- every file of the site carries its security headers as object metadata
  (``x-amz-meta-*``), which the API maps onto the response: a strict
  Content-Security-Policy (:func:`content_security_policy`: nothing from another origin
  but the stack's own Cognito and shard-bucket endpoints), HSTS, nosniff, no referrer,
  no framing;
- ``site/config.json`` is written from the stack's outputs (pool, app client, region,
  token validity), so the site needs no build per stack;
- default encryption is SSE-S3, not SSE-KMS: the files are the public code every
  browser downloads, and a KMS key would have to be granted to API Gateway for nothing
  (the policy pack allows SSE-S3 only for buckets tagged ``hub:purpose=web-client``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.buckets import private_bucket
from infra.components.documents import (
    assume_role_policy,
    deny_insecure_transport,
    policy_document,
)

WEB_PURPOSE = "web-client"
SITE_PREFIX = "site/"
# The files Vite writes (web/vite.config.js fixes their names), with their media types.
SITE_FILES: Mapping[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "assets/hub.js": "text/javascript; charset=utf-8",
    "assets/hub.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CONFIG_FILE = "config.json"
# Response headers carried as object metadata (x-amz-meta-<name>) and mapped by the API.
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
)
# The sign-in session (docs/web.md): idle sign-out after 15 minutes, as the app client's
# access tokens last.
IDLE_TIMEOUT_SECONDS = 15 * 60


def content_security_policy(region: str, shard_bucket: str) -> str:
    """The site's policy: its own origin only, plus the two AWS endpoints a browser
    client must reach itself (Cognito for SRP sign-in, the shard bucket for presigned
    shard PUT/GET). No inline script or style, no plugins, no framing, no other origin."""
    connect = " ".join(
        (
            "'self'",
            f"https://cognito-idp.{region}.amazonaws.com",
            f"https://{shard_bucket}.s3.{region}.amazonaws.com",
        )
    )
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob:",
            "font-src 'self'",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-src 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "worker-src 'none'",
        )
    )


def security_headers(region: str, shard_bucket: str) -> dict[str, str]:
    """Header name -> value for every file of the site."""
    return {
        "Content-Security-Policy": content_security_policy(region, shard_bucket),
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def metadata_key(header: str) -> str:
    """The object metadata key carrying ``header`` (S3 serves it as x-amz-meta-<key>)."""
    return header.lower()


@dataclass(frozen=True)
class WebClientArgs:
    name_prefix: str
    region: str
    account_id: pulumi.Input[str]
    site_dir: str
    shard_bucket_name: pulumi.Input[str]
    user_pool_id: pulumi.Input[str]
    user_pool_client_id: pulumi.Input[str]
    access_token_validity_seconds: int
    access_log_bucket: pulumi.Input[str]


class WebClient(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    reader_role: aws.iam.Role
    objects: Sequence[aws.s3.BucketObjectv2]

    def __init__(self, name: str, args: WebClientArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hub:web:WebClient", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        private = private_bucket(
            f"{name}-site",
            bucket_name=pulumi.Output.concat(args.name_prefix, "-web-", args.account_id),
            kms_key_arn=None,
            parent=self,
            purpose=WEB_PURPOSE,
        )
        self.bucket = private.bucket
        aws.s3.BucketLogging(
            f"{name}-site-logging",
            bucket=self.bucket.id,
            target_bucket=args.access_log_bucket,
            target_prefix="web/",
            opts=child,
        )
        self.reader_role = aws.iam.Role(
            f"{name}-reader",
            name=f"{args.name_prefix}-web-reader",
            # only API Gateway acting for this account (the confused deputy): the API that
            # uses the role is declared after it, so its ARN cannot bind the trust here
            assume_role_policy=assume_role_policy(
                "apigateway.amazonaws.com", source_account=args.account_id
            ),
            opts=child,
        )
        site_objects = pulumi.Output.concat(self.bucket.arn, "/", SITE_PREFIX, "*")
        aws.iam.RolePolicy(
            f"{name}-reader-policy",
            role=self.reader_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ReadTheSite",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject"],
                        "Resource": site_objects,
                    }
                ]
            ),
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-site-policy",
            bucket=self.bucket.id,
            policy=policy_document(deny_insecure_transport(self.bucket.arn)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[private.public_access_block]),
        )
        self.objects = self._site_objects(args)
        self.register_outputs(
            {"bucket": self.bucket.bucket, "reader_role_arn": self.reader_role.arn}
        )

    def _site_objects(self, args: WebClientArgs) -> list[aws.s3.BucketObjectv2]:
        headers = pulumi.Output.from_input(args.shard_bucket_name).apply(
            lambda bucket: {
                metadata_key(k): v for k, v in security_headers(args.region, bucket).items()
            }
        )
        child = pulumi.ResourceOptions(parent=self)
        objects = [
            aws.s3.BucketObjectv2(
                f"{self._name}-{path.replace('/', '-').replace('.', '-')}",
                bucket=self.bucket.id,
                key=SITE_PREFIX + path,
                source=pulumi.FileAsset(str(Path(args.site_dir) / path)),
                content_type=media_type,
                # revalidate every time: a new release replaces the same names
                cache_control="no-cache",
                metadata=headers,
                opts=child,
            )
            for path, media_type in SITE_FILES.items()
        ]
        config = pulumi.Output.all(args.user_pool_id, args.user_pool_client_id).apply(
            lambda ids: json.dumps(
                site_config(args.region, ids[0], ids[1], args.access_token_validity_seconds),
                sort_keys=True,
            )
        )
        objects.append(
            aws.s3.BucketObjectv2(
                f"{self._name}-config-json",
                bucket=self.bucket.id,
                key=SITE_PREFIX + CONFIG_FILE,
                content=config,
                content_type="application/json",
                cache_control="no-cache",
                metadata=headers,
                opts=child,
            )
        )
        return objects


def site_config(region: str, pool: str, client: str, token_seconds: int) -> dict[str, Any]:
    """config.json: what the site needs to sign in and find the API (its own origin)."""
    return {
        "region": region,
        "userPoolId": pool,
        "clientId": client,
        "cognitoEndpoint": f"https://cognito-idp.{region}.amazonaws.com/",
        "apiBaseUrl": "..",
        "maxTokenAgeSeconds": token_seconds,
        "idleTimeoutSeconds": IDLE_TIMEOUT_SECONDS,
    }
