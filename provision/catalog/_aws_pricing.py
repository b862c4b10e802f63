"""The only module that imports boto3 for pricing: pages of AWS Pricing API ``GetProducts``.

Returns the raw ``PriceList`` documents (each a JSON string, as the API sends them); parsing is
pure and lives in ``provision.catalog.refresh``. The Pricing API endpoint is global (us-east-1).
"""

from __future__ import annotations

import os
from typing import Any

from provision.errors import CredentialsError, MissingDependencyError, ProvisionError

ENDPOINT_ENV = "PROVISION_AWS_PRICING_ENDPOINT"
TIMEOUT_S = 30


def fetch_gpu_products(region: str) -> list[str]:
    """Every Linux/shared-tenancy GPU instance price document for ``region``."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    except ImportError as exc:
        raise MissingDependencyError(
            "refreshing AWS prices needs boto3", hint="pip install 'mlrig[aws]'"
        ) from exc
    session = boto3.Session()
    if session.get_credentials() is None:
        raise CredentialsError(
            "no AWS credentials found", hint="run `aws configure` or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
        )
    config = Config(
        connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S, retries={"max_attempts": 3, "mode": "standard"}
    )
    client: Any = session.client(
        "pricing", region_name="us-east-1", endpoint_url=os.environ.get(ENDPOINT_ENV) or None, config=config
    )
    filters = [
        {"Type": "TERM_MATCH", "Field": field, "Value": value}
        for field, value in (
            ("regionCode", region),
            ("instanceFamily", "GPU instance"),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        )
    ]
    docs: list[str] = []
    try:
        for page in client.get_paginator("get_products").paginate(
            ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1"
        ):
            docs.extend(page.get("PriceList", []))
    except NoCredentialsError as exc:
        raise CredentialsError("no AWS credentials found", hint="run `aws configure`") from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise ProvisionError(
            f"AWS Pricing API: {err.get('Code', 'error')}: {err.get('Message', exc)}",
            hint="the caller needs pricing:GetProducts permission",
        ) from exc
    except BotoCoreError as exc:
        raise ProvisionError(
            f"AWS Pricing API unreachable: {exc}", hint="check the network or proxy"
        ) from exc
    return docs
