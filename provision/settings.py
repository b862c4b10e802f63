"""Settings for the cloud commands: one place that reads ``PROVISION_*`` environment variables.

Every knob has a default that works for a real user and an environment variable so tests (and CI)
can point the clients at loopback servers, move the state store and shorten the polling. Parsing
and validation are pydantic-settings': each field names its variables (the first one set wins),
its type converts, and seconds must be finite and not negative. Each launch target reads its own
section (the fields sharing its prefix, ``aws_``/``gcp_``; see provision/targets/).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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


def _csv(value: object) -> object:
    """``a, b,,c`` -> ("a", "b", "c"); anything else is left to the type's own validation."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _seconds(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a finite number of seconds, not negative")
    return value


def _expand(value: Path) -> Path:
    return value.expanduser()


Seconds = Annotated[float, AfterValidator(_seconds)]
UserPath = Annotated[Path, AfterValidator(_expand)]
Regions = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_csv)]


def _env(*names: str) -> Any:
    """The environment variables of a field, first one set wins."""
    return AliasChoices(*names)


#: the environment a ``load(environ)`` call reads instead of os.environ (tests pass their own)
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("provision_settings_environ", default=None)


class _Environ(EnvSettingsSource):
    """os.environ, or the mapping given to ``load``; empty values count as unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _ENVIRON.get()
        env = os.environ if given is None else given
        return {k: v for k, v in env.items() if v}


class Settings(BaseSettings):
    """Everything the cloud commands need besides the command line itself."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="forbid", env_ignore_empty=True)

    state_dir: UserPath = Field(
        default_factory=_default_state_dir, validation_alias=_env("PROVISION_STATE_DIR")
    )
    ssh_config: UserPath = Field(
        default_factory=lambda: Path.home() / ".ssh" / "config",
        validation_alias=_env("PROVISION_SSH_CONFIG"),
    )
    #: JSON list of Offering objects that replaces the catalog (private price lists, tests)
    offers_file: UserPath | None = Field(None, validation_alias=_env("PROVISION_OFFERS_FILE"))
    # --- AWS (the aws-ec2 target's section)
    aws_endpoint: str | None = Field(
        None,
        validation_alias=_env(
            "aws_endpoint", "PROVISION_AWS_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"
        ),
    )
    aws_profile: str | None = Field(None, validation_alias=_env("PROVISION_AWS_PROFILE"))
    aws_regions: Regions = Field(
        ("us-east-1", "us-east-2", "us-west-2"), validation_alias=_env("PROVISION_AWS_REGIONS")
    )
    aws_ami_param: str = Field(DEFAULT_AWS_AMI_PARAM, validation_alias=_env("PROVISION_AWS_AMI_PARAM"))
    aws_ssh_user: str = Field("ubuntu", validation_alias=_env("PROVISION_AWS_SSH_USER"))
    # --- Google Cloud (the gcp-gce and gcp-tpu targets' section)
    gcp_project: str | None = Field(
        None,
        validation_alias=_env(
            "gcp_project", "PROVISION_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"
        ),
    )
    gcp_compute_endpoint: str | None = Field(None, validation_alias=_env("PROVISION_GCP_COMPUTE_ENDPOINT"))
    gcp_tpu_endpoint: str | None = Field(None, validation_alias=_env("PROVISION_GCP_TPU_ENDPOINT"))
    gcp_tpu_transport: str | None = Field(None, validation_alias=_env("PROVISION_GCP_TPU_TRANSPORT"))
    gcp_image_project: str = Field(
        DEFAULT_GCP_IMAGE_PROJECT, validation_alias=_env("PROVISION_GCP_IMAGE_PROJECT")
    )
    gcp_image_family: str = Field(
        DEFAULT_GCP_IMAGE_FAMILY, validation_alias=_env("PROVISION_GCP_IMAGE_FAMILY")
    )
    gcp_ssh_user: str = Field("mlrig", validation_alias=_env("PROVISION_GCP_SSH_USER"))
    # --- behaviour
    #: where the caller's public IP is asked (plain-text answer); tests point it at loopback
    ip_url: str = Field("https://checkip.amazonaws.com", validation_alias=_env("PROVISION_IP_URL"))
    api_timeout: Seconds = Field(60.0, validation_alias=_env("PROVISION_API_TIMEOUT"))
    #: how long a state-store write waits for another process holding the file
    store_timeout: Seconds = Field(10.0, validation_alias=_env("PROVISION_STORE_TIMEOUT"))
    poll_interval: Seconds = Field(5.0, validation_alias=_env("PROVISION_POLL_INTERVAL"))
    launch_timeout: Seconds = Field(900.0, validation_alias=_env("PROVISION_LAUNCH_TIMEOUT"))
    ssh_timeout: Seconds = Field(600.0, validation_alias=_env("PROVISION_SSH_TIMEOUT"))
    #: what the first-boot script pip-installs to run envcheck on the new machine: the release that
    #: launched it, never whatever is newest on PyPI
    envcheck_spec: str = Field(
        default_factory=lambda: f"mlrig=={_release()}",
        validation_alias=_env("PROVISION_ENVCHECK_SPEC"),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values (CLI options) over the environment; no dotenv or secrets files."""
        return (init_settings, _Environ(settings_cls, case_sensitive=True, env_ignore_empty=True))

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


def _variable(field: str) -> str:
    """The first environment variable of ``field`` (named in error messages)."""
    alias = Settings.model_fields[field].validation_alias
    choices = [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
    return choices[0] if choices else field


def load(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, then the environment (``environ`` instead of os.environ when given),
    then explicit ``overrides`` (CLI options; None means not given)."""
    from provision.errors import UsageError

    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        if isinstance(value, float) and (not math.isfinite(value) or value < 0):
            raise UsageError(f"--{key.replace('_', '-')} {value} is not a usable number of seconds")
    unknown = set(given) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    token = _ENVIRON.set(environ)
    try:  # by each field's first variable name: only those names are ever read from the environment
        return Settings(**{_variable(k): v for k, v in given.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ())]
        field = next((p for p in loc if p in Settings.model_fields), None)
        if field is None:  # the error is located at the variable the value came from
            field = next(
                (f for f in Settings.model_fields if set(loc) & set(_aliases(f))), loc[0] if loc else "?"
            )
        name = _variable(field) if field in Settings.model_fields else field
        raw = first.get("input")
        raise UsageError(f"{name}={raw!r} is not a valid value", hint=str(first.get("msg", ""))) from None
    finally:
        _ENVIRON.reset(token)


def _aliases(field: str) -> list[str]:
    alias = Settings.model_fields[field].validation_alias
    return [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
