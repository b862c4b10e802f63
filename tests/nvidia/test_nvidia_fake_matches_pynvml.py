"""The fake NVML must keep pynvml's shape, or the probe tests would test a different API."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pynvml
import pytest
from nvidia_captures import load_machine
from nvidia_fake_nvml import FakeNvml


def _required(func: Callable[..., Any]) -> int:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(func).parameters.values()
    return sum(p.kind in kinds and p.default is p.empty for p in params)


def test_every_faked_function_exists_in_pynvml_with_the_same_arity():
    fake = FakeNvml(load_machine("a10-x1-driver535.q.txt"))
    names = [n for n in dir(FakeNvml) if n.startswith("nvml")]
    names += ["nvmlDeviceGetName", "nvmlDeviceGetTemperature", "nvmlDeviceGetRemappedRows"]  # via __getattr__

    assert len(names) > 30
    for name in names:
        real = getattr(pynvml, name, None)
        assert callable(real), f"{name} is not a pynvml function"
        faked = getattr(fake, name)
        if "_" not in inspect.signature(faked).parameters:  # generated queries take (handle, *_)
            assert _required(faked) == _required(real), name


def test_fake_raises_the_real_pynvml_error_classes():
    fake = FakeNvml(load_machine("gtx-680-x1-driver470.q.txt"))
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)

    with pytest.raises(pynvml.NVMLError_NotSupported):  # "N/A" in the capture
        fake.nvmlDeviceGetPowerUsage(handle)
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):  # driver 470 predates the clocks-event query
        fake.nvmlDeviceGetCurrentClocksEventReasons(handle)
