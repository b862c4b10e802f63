"""Settings for the cloud commands: one place that reads ``PROVISION_*`` environment variables.

Every knob has a default that works for a real user and an environment variable so tests (and CI)
can point the clients at loopback servers, move the state store and shorten the polling.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

#: Public DLAMI SSM parameter (x86_64, base OSS NVIDIA driver, Ubuntu 22.04).
#: source: https://docs.aws.amazon.com/dlami/latest/devguide/find-dlami-id.html, as_of 2026-11
DEFAULT_AWS_AMI_PARAM = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
)
#: Deep Learning VM images live in this public project; the family is overridable because Google
#: retires families as CUDA moves on. source: cloud.google.com/deep-learning-vm/docs/images, 2026-11
DEFAULT_GCP_IMAGE_PROJECT = "deeplearning-platform-release"
DEFAULT_GCP_IMAGE_FAMILY = "common-cu128-ubuntu-2204-nvidia-570"


def _default_state_dir() -> Path:
    return platformdirs.user_state_path("mlrig") / "provision"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the cloud commands need besides the command line itself."""

    state_dir: Path = field(default_factory=_default_state_dir)
    ssh_config: Path = field(default_factory=lambda: Path.home() / ".ssh" / "config")
    #: JSON list of Offering objects that replaces the catalog (private price lists, tests)
    offers_file: Path | None = None
    # --- AWS
    aws_endpoint: str | None = None
    aws_profile: str | None = None
    aws_regions: tuple[str, ...] = ("us-east-1", "us-east-2", "us-west-2")
    aws_ami_param: str = DEFAULT_AWS_AMI_PARAM
    aws_ssh_user: str = "ubuntu"
    # --- Google Cloud
    gcp_project: str | None = None
    gcp_compute_endpoint: str | None = None
    gcp_tpu_endpoint: str | None = None
    gcp_tpu_transport: str | None = None
    gcp_image_project: str = DEFAULT_GCP_IMAGE_PROJECT
    gcp_image_family: str = DEFAULT_GCP_IMAGE_FAMILY
    gcp_ssh_user: str = "mlrig"
    # --- behaviour
    #: where the caller's public IP is asked (plain-text answer); tests point it at loopback
    ip_url: str = "https://checkip.amazonaws.com"
    api_timeout: float = 60.0
    #: how long a state-store write waits for another process holding the file
    store_timeout: float = 10.0
    poll_interval: float = 5.0
    launch_timeout: float = 900.0
    ssh_timeout: float = 600.0
    #: what the first-boot script pip-installs to run envcheck on the new machine: the release that
    #: launched it, never whatever is newest on PyPI
    envcheck_spec: str = field(default_factory=lambda: f"mlrig=={_release()}")

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def key_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def ssh_include(self) -> Path:
        """The file with mlrig's Host entries; ~/.ssh/config gets one ``Include`` line for it."""
        return self.ssh_config.parent / "mlrig_config"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def tpu_transport(self) -> str:
        if self.gcp_tpu_transport:
            return self.gcp_tpu_transport
        return "rest" if self.gcp_tpu_endpoint else "grpc"


def _release() -> str:
    from envcheck import __version__

    return __version__


#: field name -> environment variables, first one set wins
_ENV: dict[str, tuple[str, ...]] = {
    "state_dir": ("PROVISION_STATE_DIR",),
    "ssh_config": ("PROVISION_SSH_CONFIG",),
    "offers_file": ("PROVISION_OFFERS_FILE",),
    "aws_endpoint": ("PROVISION_AWS_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"),
    "aws_profile": ("PROVISION_AWS_PROFILE",),
    "aws_regions": ("PROVISION_AWS_REGIONS",),
    "aws_ami_param": ("PROVISION_AWS_AMI_PARAM",),
    "aws_ssh_user": ("PROVISION_AWS_SSH_USER",),
    "gcp_project": ("PROVISION_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"),
    "gcp_compute_endpoint": ("PROVISION_GCP_COMPUTE_ENDPOINT",),
    "gcp_tpu_endpoint": ("PROVISION_GCP_TPU_ENDPOINT",),
    "gcp_tpu_transport": ("PROVISION_GCP_TPU_TRANSPORT",),
    "gcp_image_project": ("PROVISION_GCP_IMAGE_PROJECT",),
    "gcp_image_family": ("PROVISION_GCP_IMAGE_FAMILY",),
    "gcp_ssh_user": ("PROVISION_GCP_SSH_USER",),
    "ip_url": ("PROVISION_IP_URL",),
    "api_timeout": ("PROVISION_API_TIMEOUT",),
    "store_timeout": ("PROVISION_STORE_TIMEOUT",),
    "poll_interval": ("PROVISION_POLL_INTERVAL",),
    "launch_timeout": ("PROVISION_LAUNCH_TIMEOUT",),
    "ssh_timeout": ("PROVISION_SSH_TIMEOUT",),
    "envcheck_spec": ("PROVISION_ENVCHECK_SPEC",),
}


def load(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, then the environment, then explicit ``overrides`` (CLI options)."""
    from provision.errors import UsageError

    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Settings)}
    for name, names in _ENV.items():
        raw = next((env[n] for n in names if env.get(n)), None)
        if raw is None:
            continue
        kind = str(types[name])
        try:
            if "Path" in kind:
                values[name] = Path(raw).expanduser()
            elif "float" in kind:
                values[name] = float(raw)
                if not math.isfinite(values[name]) or values[name] < 0:
                    raise ValueError(raw)
            elif "tuple" in kind:
                values[name] = _csv(raw)
            else:
                values[name] = raw
        except ValueError:
            raise UsageError(f"{names[0]}={raw!r} is not a valid value") from None
    for key, value in overrides.items():
        if isinstance(value, float) and (not math.isfinite(value) or value < 0):
            raise UsageError(f"--{key.replace('_', '-')} {value} is not a usable number of seconds")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(Settings(), **values)
