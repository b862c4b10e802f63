"""NVML that will not start, a hanging nvidia-smi, and single NVML calls that fail."""

from __future__ import annotations

import shutil

import pynvml
import pytest
from nvidia_fake_nvml import FakeNvml

from envcheck import _nvml
from envcheck.probes import nvidia

MISMATCH_SMI = (
    'echo "Failed to initialize NVML: Driver/library version mismatch"\necho "NVML library version: 550.54"'
)


@pytest.mark.parametrize(
    ("code", "name", "reason"),
    [
        (12, "NVML_ERROR_LIBRARY_NOT_FOUND", "NVML library not found"),
        (9, "NVML_ERROR_DRIVER_NOT_LOADED", "NVIDIA kernel driver not loaded"),
        (18, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", "driver/library version mismatch"),
        (999, "NVML_ERROR_UNKNOWN", "unknown error (Unknown)"),
    ],
)
def test_init_failure_is_a_status_with_the_real_code(host, install, code, name, reason):
    install(FakeNvml(None, init_error=code))

    info = nvidia.probe(host.ctx())

    assert info.nvml is not None
    assert (info.nvml.ok, info.nvml.code, info.nvml.name) == (False, code, name)
    assert info.nvml.message is not None and info.nvml.message.startswith(reason)
    assert info.gpus is None and info.driver_version is None and info.topology is None
    assert info.unavailable is not None and info.unavailable["nvml"] == info.nvml.message
    assert info.nvidia_smi_output == "nvidia-smi: not found on PATH"


def test_mismatch_keeps_library_path_and_quotes_nvidia_smi(host, install):
    host.nvidia_driver("535.183.01")  # the loaded module; user space was upgraded to 550
    host.command("nvidia-smi", MISMATCH_SMI)
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH))

    info = nvidia.probe(host.ctx())

    assert info.nvml is not None and info.nvml.code == 18
    assert info.nvml_library == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.183.01"
    assert info.kernel_module is not None and info.kernel_module.version == "535.183.01"
    assert info.nvidia_smi_output == (
        "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 550.54"
    )


def test_library_missing_has_no_library_path(host, install):
    host.nvidia_driver("535.183.01")  # maps would name one, but code 12 means nothing was loaded
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))

    assert nvidia.probe(host.ctx()).nvml_library is None


@pytest.mark.timeout(30)
def test_hanging_nvidia_smi_is_cut_off(host, install):
    host.command("nvidia-smi", f"exec {shutil.which('sleep')} 120")  # exec: the kill reaches the sleeper
    install(FakeNvml(None, init_error=pynvml.NVML_ERROR_UNKNOWN))

    info = nvidia.probe(host.ctx(timeout=0.5))

    assert info.nvidia_smi_output == "nvidia-smi timed out after 0.5s"
    assert info.nvml is not None and info.nvml.code == 999


def test_one_field_failing_with_unknown_keeps_the_rest(host, machine):
    fake = machine("a10-x1-driver535.q.txt")
    fake.fail("nvmlDeviceGetTemperature", pynvml.NVML_ERROR_UNKNOWN)
    fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVML_ERROR_NO_PERMISSION)

    (gpu,) = nvidia.probe(host.ctx()).gpus or []

    assert gpu.temperature_c is None and gpu.unavailable["temperature_c"] == "unknown error (Unknown)"
    assert gpu.power_draw_w is None and gpu.unavailable["power_draw_w"] == "no permission (NoPermission)"
    assert (gpu.power_limit_w, gpu.fan_pct, gpu.clock_sm_max_mhz) == (150.0, 0, 1695)


def test_a_binding_bug_in_one_field_is_recorded_not_raised(host, machine, monkeypatch):
    fake = machine("a10-x1-driver535.q.txt")

    def broken(handle):
        raise ValueError("struct layout changed")

    monkeypatch.setattr(fake, "nvmlDeviceGetUtilizationRates", broken, raising=False)

    (gpu,) = nvidia.probe(host.ctx()).gpus or []

    assert gpu.unavailable["utilization"] == "ValueError: struct layout changed"
    assert gpu.memory_total_mib == 23028


def test_device_count_failure_leaves_gpus_unknown(host, machine):
    fake = machine("a10-x1-driver535.q.txt")
    fake.fail("nvmlDeviceGetCount", pynvml.NVML_ERROR_UNKNOWN)

    info = nvidia.probe(host.ctx())

    assert info.nvml is not None and info.nvml.ok
    assert info.gpus is None and info.unavailable == {"gpus": "unknown error (Unknown)"}
    assert fake.initialized == 0  # NVML shut down even on this early exit


def test_function_missing_from_the_bindings(install):
    install(FakeNvml(None))

    with pytest.raises(_nvml.NvmlError) as caught:
        _nvml.call("nvmlDeviceGetSomethingFromTheFuture")

    assert caught.value.code == _nvml.FUNCTION_NOT_FOUND
    assert (
        caught.value.reason
        == "function not in these nvidia-ml-py bindings: nvmlDeviceGetSomethingFromTheFuture"
    )


def test_unknown_clock_event_bits_are_named_not_dropped(host, machine, monkeypatch):
    fake = machine("a10-x1-driver535.q.txt")
    monkeypatch.setattr(fake, "nvmlDeviceGetCurrentClocksEventReasons", lambda h: 0x4 | 0x1000, raising=False)

    (gpu,) = nvidia.probe(host.ctx()).gpus or []

    assert gpu.throttle_reasons == ["sw_power_cap", "unknown_0x1000"]
