"""The one factory for every boto3 and google-cloud client: endpoint, credentials, retries, timeouts.

Nothing else in mlrig builds a cloud client, so tests can point every call at 127.0.0.1 through
settings alone. Two rules learnt the hard way (research/provisioning-anchors.md (d)):

* launch calls use a boto3 client with retries off: botocore silently retries
  InsufficientInstanceCapacity (HTTP 500), which would hide capacity errors from failover and,
  with a ClientToken that a fake ignores, could launch twice;
* Compute Engine operations are waited on through our own ZoneOperationsClient built here with the
  same endpoint, because ``ExtendedOperation.result()`` polls through an internal client that drops
  a custom endpoint.
"""

from __future__ import annotations

import importlib
from typing import Any

from provision.errors import CredentialsError, MissingDependencyError, ProvisionError, UsageError
from provision.settings import Settings

AWS_HINT = "run `aws configure` (or set AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
GCP_HINT = (
    "run `gcloud auth application-default login` and set the project with PROVISION_GCP_PROJECT "
    "(or `gcloud config set project ID`)"
)


#: what each driver imports, with the message and install hint when it is missing
_SDKS = {
    "aws": (("boto3", "botocore.exceptions", "botocore.parsers"), "AWS support needs boto3", "aws"),
    "gcp": (
        ("google.api_core.exceptions", "google.auth", "google.cloud.compute_v1"),
        "Google Cloud support needs google-cloud-compute",
        "gcp",
    ),
    "tpu": (("google.cloud.tpu_v2",), "Cloud TPU support needs google-cloud-tpu", "gcp"),
}


def load_sdk(which: str) -> None:
    """Import a driver's SDK now: before anything is recorded (an interrupted import then costs
    nothing), and as one MissingDependencyError with the install command if it is absent."""
    modules, message, extra = _SDKS[which]
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(message, hint=f"pip install 'mlrig[{extra}]'") from None


# --------------------------------------------------------------------------- AWS
def _boto3() -> Any:
    load_sdk("aws")
    import boto3

    return boto3


#: botocore's model loader, shared by every session: parsing the EC2 model takes ~0.3 s per client
#: otherwise. Sessions themselves stay fresh, so credentials are always resolved anew.
_LOADER: list[Any] = []


def _aws_session(profile: str | None, region: str) -> Any:
    boto3 = _boto3()
    import botocore.exceptions
    import botocore.loaders
    import botocore.session

    core = botocore.session.get_session()
    if not _LOADER:
        _LOADER.append(core.get_component("data_loader"))
    core.register_component("data_loader", _LOADER[0])
    try:
        return boto3.session.Session(botocore_session=core, profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise CredentialsError(f"AWS profile {profile!r} not found", hint=AWS_HINT) from None


def aws_check_credentials(settings: Settings) -> None:
    """Raise CredentialsError unless boto3 can find credentials (no network call)."""
    session = _aws_session(settings.aws_profile, settings.aws_regions[0])
    if session.get_credentials() is None:
        raise CredentialsError("no AWS credentials found", hint=AWS_HINT)


def aws_client(settings: Settings, service: str, region: str, *, launch: bool = False) -> Any:
    """A boto3 client; ``launch=True`` turns retries off so capacity errors reach failover at once."""
    from botocore.config import Config

    config = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 1 if launch else 4},
        connect_timeout=min(10.0, settings.api_timeout),
        read_timeout=settings.api_timeout,
        user_agent_extra="mlrig-provision",
    )
    session = _aws_session(settings.aws_profile, region)
    return session.client(service, endpoint_url=settings.aws_endpoint, config=config)


# --------------------------------------------------------------------------- Google Cloud
def _compute() -> Any:
    load_sdk("gcp")
    from google.cloud import compute_v1

    return compute_v1


def gcp_credentials(settings: Settings, endpoint: str | None) -> tuple[Any, str]:
    """(credentials, project). Anonymous credentials only together with an endpoint override."""
    load_sdk("gcp")
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        if not settings.gcp_project:
            raise UsageError("PROVISION_GCP_PROJECT must be set together with an endpoint override")
        return AnonymousCredentials(), settings.gcp_project
    import google.auth
    import google.auth.exceptions

    try:
        creds, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except google.auth.exceptions.DefaultCredentialsError:
        raise CredentialsError("no Google Cloud credentials found", hint=GCP_HINT) from None
    project = settings.gcp_project or project
    if not project:
        raise CredentialsError("no Google Cloud project set", hint=GCP_HINT)
    return creds, project


def gcp_client(settings: Settings, kind: str) -> Any:
    """A compute_v1 client by class name, e.g. ``InstancesClient`` or ``ZoneOperationsClient``."""
    compute_v1 = _compute()
    endpoint = settings.gcp_compute_endpoint
    creds, _ = gcp_credentials(settings, endpoint)
    options = {"api_endpoint": endpoint} if endpoint else None
    return getattr(compute_v1, kind)(credentials=creds, client_options=options, transport="rest")


def gcp_project(settings: Settings) -> str:
    return gcp_credentials(settings, settings.gcp_compute_endpoint)[1]


def tpu_client(settings: Settings) -> Any:
    """A tpu_v2 client; REST transport when the endpoint is overridden (grpc needs TLS otherwise)."""
    load_sdk("tpu")
    from google.cloud import tpu_v2

    endpoint = settings.gcp_tpu_endpoint
    creds, _ = gcp_credentials(settings, endpoint)
    options = {"api_endpoint": endpoint} if endpoint else None
    return tpu_v2.TpuClient(credentials=creds, client_options=options, transport=settings.tpu_transport)


def tpu_project(settings: Settings) -> str:
    return gcp_credentials(settings, settings.gcp_tpu_endpoint)[1]


def public_ip(settings: Settings) -> str:
    """The caller's public IPv4 address, asked from ``settings.ip_url`` with a short timeout."""
    import ipaddress
    import urllib.request

    try:
        with urllib.request.urlopen(settings.ip_url, timeout=5) as resp:
            text = resp.read(64).decode("ascii", "replace").strip()
        return str(ipaddress.IPv4Address(text))
    except (OSError, ValueError) as exc:
        raise ProvisionError(
            f"could not find your public IP address from {settings.ip_url} ({exc})",
            hint="pass --ssh-cidr with the address range allowed to SSH in, e.g. --ssh-cidr 203.0.113.7/32",
        ) from None
