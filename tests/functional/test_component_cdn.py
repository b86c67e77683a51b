"""imgpipe:cdn under Pulumi's mocks: CloudFront in front of the private output bucket.

The distribution, its Origin Access Control, the format-negotiation function, the cache and
response-headers policies, the bucket policy and the outputs exist and are wired to each
other; without imgpipe:cdn nothing of it is registered (tests/functional/test_component.py
holds the stack as it was).
"""

from __future__ import annotations

import json
import runpy
from collections import Counter
from typing import Any

import pulumi
import pytest

from lambda_pkg.profiles import PipelineConfig, Route
from pipeline.delivery import edge
from pipeline.program.component import CDN_DEFAULT_TTL_S, CDN_MAX_TTL_S, TYPE_TOKEN
from pipeline.program.guards import DeployGuardError
from pipeline.program.iam import output_bucket_policy, tls_only_bucket_policy
from pipeline.program.stack import (
    OUTPUT_CDN_DOMAIN,
    OUTPUT_CDN_URL,
    StackSettings,
    StackSettingsError,
)
from tests.support import delivery
from tests.support.pulumi_program import (
    BUCKET,
    BUCKET_POLICY,
    CACHE_POLICY,
    CDN_DOMAIN,
    DISTRIBUTION,
    EDGE_FUNCTION,
    HEADERS_POLICY,
    ORIGIN_ACCESS,
    REPO,
    Deployment,
    PipelineMocks,
    deploy,
    run_main,
)

pytestmark = pytest.mark.usefixtures("fake_layer")  # no pip build under the mocks

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
IRISH = CERTIFICATE.replace("us-east-1", "eu-west-1")
HOST = "img.example.com"
CUSTOM_DOMAIN = {"cdnAliases": HOST, "cdnCertificateArn": CERTIFICATE}


@pytest.fixture
def served() -> Deployment:
    return deploy(settings=StackSettings(cdn=True), config=delivery.site())


def bucket_policy(mocks: PipelineMocks, bucket: Any) -> dict[str, Any]:
    (policy,) = [r for r in mocks.of_type(BUCKET_POLICY) if r.inputs["bucket"] == bucket.id]
    return json.loads(policy.inputs["policy"])


def test_a_cdn_stack_adds_the_distribution_and_its_parts_under_the_component(
    served: Deployment,
) -> None:
    mocks = served.mocks
    counts = Counter(r.typ for r in mocks.resources.values())
    assert {t: counts[t] for t in (DISTRIBUTION, EDGE_FUNCTION, ORIGIN_ACCESS)} == {
        DISTRIBUTION: 1,
        EDGE_FUNCTION: 1,
        ORIGIN_ACCESS: 1,
    }
    assert (counts[CACHE_POLICY], counts[HEADERS_POLICY], counts[BUCKET_POLICY]) == (1, 1, 2)
    root = mocks.one(TYPE_TOKEN)
    for typ in (DISTRIBUTION, EDGE_FUNCTION, ORIGIN_ACCESS, CACHE_POLICY, HEADERS_POLICY):
        assert mocks.one(typ).parent == root.urn


def test_the_distribution_reads_the_output_bucket_with_its_origin_access_control(
    served: Deployment,
) -> None:
    mocks, names = served.mocks, served.names
    output = next(b for b in mocks.of_type(BUCKET) if b.name == names.output_bucket)
    access = mocks.one(ORIGIN_ACCESS)
    assert {k: access.inputs[k] for k in access.inputs if k != "description"} == {
        "originAccessControlOriginType": "s3",
        "signingBehavior": "always",
        "signingProtocol": "sigv4",
    }
    distribution = mocks.one(DISTRIBUTION).inputs
    (origin,) = distribution["origins"]
    assert origin["domainName"] == output.outputs["bucketRegionalDomainName"]
    assert origin["originAccessControlId"] == access.id
    assert "s3OriginConfig" not in origin  # no legacy origin access identity
    behaviour = distribution["defaultCacheBehavior"]
    assert behaviour["targetOriginId"] == origin["originId"]
    assert behaviour["viewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["allowedMethods"] == behaviour["cachedMethods"] == ["GET", "HEAD"]
    assert behaviour["cachePolicyId"] == mocks.one(CACHE_POLICY).id
    assert behaviour["responseHeadersPolicyId"] == mocks.one(HEADERS_POLICY).id
    assert behaviour["functionAssociations"] == [
        {"eventType": "viewer-request", "functionArn": mocks.one(EDGE_FUNCTION).outputs["arn"]}
    ]
    assert distribution["enabled"] is True
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in distribution


def test_only_that_distribution_may_read_and_only_renditions(served: Deployment) -> None:
    mocks, names = served.mocks, served.names
    buckets = {b.name: b for b in mocks.of_type(BUCKET)}
    output = buckets[names.output_bucket]
    distribution_arn = mocks.one(DISTRIBUTION).outputs["arn"]
    document = bucket_policy(mocks, output)
    assert document == output_bucket_policy(output.outputs["arn"], distribution_arn)
    statement = document["Statement"][1]
    assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert statement["Action"] == "s3:GetObject"  # no ListBucket, no writes
    assert statement["Resource"] == f"{output.outputs['arn']}/processed/*"
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    # the TLS-only deny stays first, and the input bucket's policy is only that
    assert document["Statement"][0] == tls_only_bucket_policy(output.outputs["arn"])["Statement"][0]
    input_bucket = buckets[names.input_bucket]
    assert bucket_policy(mocks, input_bucket) == tls_only_bucket_policy(input_bucket.outputs["arn"])
    # the policy is put once the distribution exists (its ARN is in it)
    (policy,) = [r for r in mocks.of_type(BUCKET_POLICY) if r.inputs["bucket"] == output.id]
    assert mocks.one(DISTRIBUTION).urn in policy.dependencies


def test_the_function_is_the_negotiation_code_compiled_for_the_stacks_profiles(
    served: Deployment,
) -> None:
    function = served.mocks.one(EDGE_FUNCTION).inputs
    assert function["runtime"] == "cloudfront-js-2.0"
    assert function["publish"] is True
    assert function["code"] == edge.function_code(served.config)
    table = json.dumps(edge.negotiation_table(served.config), separators=(",", ":"))
    assert f"const TABLE = {table};" in function["code"]
    assert '["avif","webp","jpeg"]' in table


def test_the_cache_honours_cache_control_and_keys_on_the_uri_alone(served: Deployment) -> None:
    policy = served.mocks.one(CACHE_POLICY).inputs
    assert (policy["minTtl"], policy["defaultTtl"], policy["maxTtl"]) == (
        0,
        CDN_DEFAULT_TTL_S,
        CDN_MAX_TTL_S,
    )
    assert policy["parametersInCacheKeyAndForwardedToOrigin"] == {
        "cookiesConfig": {"cookieBehavior": "none"},
        "headersConfig": {"headerBehavior": "none"},  # not Accept: the URI holds the format
        "queryStringsConfig": {"queryStringBehavior": "none"},
        "enableAcceptEncodingGzip": False,
        "enableAcceptEncodingBrotli": False,
    }


def test_responses_vary_on_accept_and_carry_the_local_cdns_headers(served: Deployment) -> None:
    policy = served.mocks.one(HEADERS_POLICY).inputs
    assert policy["customHeadersConfig"] == {
        "items": [{"header": "Vary", "value": "Accept", "override": True}]
    }
    security = policy["securityHeadersConfig"]
    assert security["contentTypeOptions"] == {"override": True}
    assert security["strictTransportSecurity"] == {
        "accessControlMaxAgeSec": edge.HSTS_MAX_AGE_S,
        "override": True,
    }
    local = edge.RESPONSE_HEADERS  # what the local CDN sends: the same
    assert local == {
        "Vary": "Accept",
        "X-Content-Type-Options": "nosniff",
        "Strict-Transport-Security": f"max-age={edge.HSTS_MAX_AGE_S}",
    }
    cors = policy["corsConfig"]
    assert cors["accessControlAllowOrigins"] == {"items": ["*"]}
    assert cors["accessControlAllowMethods"] == {"items": ["GET", "HEAD"]}
    assert cors["accessControlAllowCredentials"] is False


def test_a_custom_domain_uses_its_certificate_with_sni_and_tls_1_2() -> None:
    settings = StackSettings(
        cdn=True, cdn_aliases=("img.example.com",), cdn_certificate_arn=CERTIFICATE
    )
    distribution = deploy(settings=settings).mocks.one(DISTRIBUTION).inputs
    assert distribution["aliases"] == ["img.example.com"]
    assert distribution["viewerCertificate"] == {
        "acmCertificateArn": CERTIFICATE,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }


def test_in_a_single_bucket_the_cdn_reads_renditions_and_never_originals() -> None:
    routes = (Route("site", prefix="uploads/"),)
    config = PipelineConfig(delivery.site().profiles, routes)
    settings = StackSettings(cdn=True, single_bucket=True, routes=routes)
    mocks = deploy(settings=settings, config=config).mocks
    (bucket,) = mocks.of_type(BUCKET)
    document = bucket_policy(mocks, bucket)
    assert document == output_bucket_policy(
        bucket.outputs["arn"], mocks.one(DISTRIBUTION).outputs["arn"]
    )
    assert document["Statement"][1]["Resource"] == f"{bucket.outputs['arn']}/processed/*"
    (origin,) = mocks.one(DISTRIBUTION).inputs["origins"]
    assert origin["domainName"] == bucket.outputs["bucketRegionalDomainName"]


def test_main_exports_the_cdn_domain_and_url_only_for_a_cdn_stack() -> None:
    exported = run_main(config={"cdn": "true"}).exported  # type: ignore[attr-defined]
    assert exported[OUTPUT_CDN_DOMAIN] == CDN_DOMAIN
    assert exported[OUTPUT_CDN_URL] == f"https://{CDN_DOMAIN}"
    custom = {"cdn": "true", **CUSTOM_DOMAIN}
    exported = run_main(config=custom).exported  # type: ignore[attr-defined]
    assert exported[OUTPUT_CDN_URL] == "https://img.example.com"
    plain = run_main().exported  # type: ignore[attr-defined]
    assert OUTPUT_CDN_DOMAIN not in plain and OUTPUT_CDN_URL not in plain


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        (CUSTOM_DOMAIN, DeployGuardError, "set imgpipe:cdn true"),
        ({"cdn": "true", "cdnAliases": "img.example.com"}, DeployGuardError, "go together"),
        ({"cdn": "true", "cdnCertificateArn": CERTIFICATE}, DeployGuardError, "go together"),
        ({"cdnCertificateArn": IRISH}, StackSettingsError, "a certificate in us-east-1"),
        ({"cdnAliases": "img_example.com"}, StackSettingsError, "imgpipe:cdnAliases"),
        ({"cdn": "yes"}, StackSettingsError, "imgpipe:cdn: got 'yes'"),
    ],
)  # fmt: skip
def test_bad_cdn_settings_fail_at_preview_before_any_resource(
    config: dict[str, str], error: type[Exception], match: str
) -> None:
    mocks = PipelineMocks()
    pulumi.runtime.reset_options(project="imgpipe", stack="dev")
    pulumi.runtime.set_all_config({f"imgpipe:{k}": v for k, v in config.items()})
    pulumi.runtime.set_mocks(mocks, project="imgpipe", stack="dev", preview=True)
    with pytest.raises(error, match=match):
        pulumi.runtime.test(lambda: runpy.run_path(str(REPO / "__main__.py")))()
    assert mocks.resources == {}


def test_a_profile_whose_canonical_urls_cannot_be_negotiated_is_refused_with_cdn_only() -> None:
    flat = delivery.config(delivery.rendition("w800", ["webp", "jpeg"], "processed/w/{key}.{ext}"))
    with pytest.raises(DeployGuardError, match="ends in the source's extension"):
        deploy(settings=StackSettings(cdn=True), config=flat)
    assert deploy(config=flat).mocks.of_type(DISTRIBUTION) == []  # fine without a CDN
