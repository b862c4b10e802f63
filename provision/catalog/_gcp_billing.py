"""The only module that imports google-cloud-billing: SKUs of Compute Engine from the Cloud Billing Catalog.

Returns each SKU as the REST JSON dict (camelCase, as the API sends it); parsing is pure and
lives in ``provision.catalog.refresh``.
"""

from __future__ import annotations

import os
from typing import Any

from provision.errors import CredentialsError, MissingDependencyError, ProvisionError

#: Compute Engine's service id in the Cloud Billing Catalog
COMPUTE_SERVICE = "services/6F81-5844-456A"
ENDPOINT_ENV = "PROVISION_GCP_BILLING_ENDPOINT"
TIMEOUT_S = 60.0


def fetch_compute_skus() -> list[dict[str, Any]]:
    """Every Compute Engine SKU (several thousand, paged by the client library)."""
    try:
        import google.auth
        from google.api_core import exceptions as gexc
        from google.auth import credentials as gcreds
        from google.cloud import billing_v1
    except ImportError as exc:
        raise MissingDependencyError(
            "refreshing GCP prices needs google-cloud-billing", hint="pip install 'mlrig[gcp]'"
        ) from exc
    endpoint = os.environ.get(ENDPOINT_ENV)
    creds: Any
    if endpoint:
        creds = gcreds.AnonymousCredentials()
    else:
        try:
            creds, _ = google.auth.default()
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise CredentialsError(
                "no Google Cloud credentials found", hint="run `gcloud auth application-default login`"
            ) from exc
    options = {"api_endpoint": endpoint} if endpoint else None
    client = billing_v1.CloudCatalogClient(credentials=creds, transport="rest", client_options=options)
    try:
        pager = client.list_skus(parent=COMPUTE_SERVICE, timeout=TIMEOUT_S)
        return [
            billing_v1.Sku.to_dict(sku, use_integers_for_enums=False, preserving_proto_field_name=False)
            for sku in pager
        ]
    except gexc.GoogleAPICallError as exc:
        raise ProvisionError(
            f"Cloud Billing Catalog API: {exc.message}",
            hint="enable cloudbilling.googleapis.com for the project",
        ) from exc
    except gexc.RetryError as exc:
        raise ProvisionError(
            f"Cloud Billing Catalog API unreachable: {exc}", hint="check the network"
        ) from exc
