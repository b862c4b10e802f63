"""What a paste says about the OS and the driver's kernel side: ``/etc/os-release``,
``lsb_release -a``, ``/etc/*-release`` one-liners, ``uname -a``, ``/proc/driver/nvidia/version``
and ``lsmod | grep nvidia``."""

from __future__ import annotations

import re

from envcheck.ingest._partial import Partial
from envcheck.ingest._text import Doc
from envcheck.models import ContainerInfo, KernelModule, NvidiaInfo, Snapshot, SystemInfo

__all__ = ["read"]

_OS_RELEASE = re.compile(
    r'^\s*(?P<key>PRETTY_NAME|NAME|VERSION_ID|ID|ID_LIKE|VERSION)="?(?P<value>[^"]*)"?\s*$'
)
_LSB = re.compile(
    r"^\s*Description:\s+(?P<value>(?:Ubuntu|Debian|CentOS|Red Hat|Fedora|Rocky|AlmaLinux|openSUSE|SUSE|Arch|"
    r"Linux Mint|Pop!_OS|Amazon Linux|Oracle Linux)\S*(?: \S+)*)\s*$"
)
_RELEASE_FILE = re.compile(
    r"^\s*(?P<value>(?:Rocky Linux|Red Hat Enterprise Linux|CentOS(?: Linux| Stream)?|AlmaLinux|Fedora)"
    r"(?: Server)? release \S+(?: \([^)]*\))?)\s*$"
)
_UNAME = re.compile(
    r"^\s*Linux \S+ (?P<kernel>\d+\.\d+\S*) #\S+.*?(?P<arch>x86_64|aarch64|ppc64le|s390x)(?: \S+)* "
    r"GNU/Linux\s*$"
)
_NVRM = re.compile(
    r"NVRM version: NVIDIA UNIX (?:Open )?(?:\S+ )?Kernel Module(?: for \S+)?\s+(?P<v>\d+(?:\.\d+)+)"
)
_LSMOD = re.compile(r"^\s*(?P<mod>nvidia|nouveau)\s+\d+\s+\d+")
#: a kernel log line from nouveau about a PCI device ("[  4.51] nouveau 0000:01:00.0: DRM: ..."): nouveau
#: is loaded and bound to that GPU (it binds nothing but NVIDIA GPUs)
_DMESG_NOUVEAU = re.compile(r"^\s*(?:\[\s*\d+\.\d+\]\s*)?nouveau [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.\d: ")


def read(doc: Doc) -> list[Partial]:
    out: list[Partial] = []
    fields: dict[str, str] = {}
    first_os = None
    lsmod: dict[str, int] = {}
    dmesg: int | None = None
    for ln in doc.lines:
        text = ln.text
        if m := _OS_RELEASE.match(text):
            fields.setdefault(m.group("key"), m.group("value"))
            first_os = first_os or ln.no
        elif m := _LSB.match(text):
            out.append(
                Partial(
                    "os-release",
                    Snapshot(system=SystemInfo(os="Linux", distro=m.group("value").strip())),
                    ln.no,
                )
            )
        elif m := _RELEASE_FILE.match(text):
            out.append(
                Partial("os-release", Snapshot(system=SystemInfo(os="Linux", distro=m.group("value"))), ln.no)
            )
        elif m := _UNAME.match(text):
            kernel = m.group("kernel")
            wsl = ContainerInfo(wsl=True) if "microsoft" in kernel.lower() else None
            system = SystemInfo(os="Linux", kernel=kernel, arch=m.group("arch"), container=wsl)
            out.append(Partial("uname", Snapshot(system=system), ln.no))
        elif m := _NVRM.search(text):
            module = KernelModule(loaded=True, version=m.group("v"), banner=text.strip())
            out.append(Partial("os-release", Snapshot(nvidia=NvidiaInfo(kernel_module=module)), ln.no))
        elif m := _LSMOD.match(text):
            lsmod.setdefault(m.group("mod"), ln.no)
        elif dmesg is None and _DMESG_NOUVEAU.match(text):
            dmesg = ln.no
    if "PRETTY_NAME" in fields or ("NAME" in fields and "VERSION_ID" in fields):
        distro = fields.get("PRETTY_NAME") or f"{fields['NAME']} {fields['VERSION_ID']}"
        out.append(
            Partial("os-release", Snapshot(system=SystemInfo(os="Linux", distro=distro)), first_os or 1)
        )
    if lsmod:
        module = KernelModule(
            loaded=True if "nvidia" in lsmod else None, nouveau_loaded=True if "nouveau" in lsmod else None
        )
        out.append(Partial("lsmod", Snapshot(nvidia=NvidiaInfo(kernel_module=module)), min(lsmod.values())))
    if dmesg is not None and "nouveau" not in lsmod:
        module = KernelModule(nouveau_loaded=True)
        out.append(Partial("dmesg", Snapshot(nvidia=NvidiaInfo(kernel_module=module)), dmesg))
    return out
