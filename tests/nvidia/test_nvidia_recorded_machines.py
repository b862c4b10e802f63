"""The NVIDIA probe against fake NVML answering as real recorded machines (tests/fixtures/nvidia)."""

from __future__ import annotations

from envcheck.models import GpuProcess
from envcheck.probes import nvidia

NOT_SUPPORTED = "not supported by this GPU or driver (NotSupported)"


def test_h100_x8_nvswitch_topology_throttling_and_process(host, machine):
    host.nvidia_driver("535.183.01")
    host.process(1002127, "/usr/bin/python")
    machine("h100-sxm5-80gb-x8-driver535.q.txt", topology="h100-sxm-x8-topo.txt")

    info = nvidia.probe(host.ctx())

    assert info.nvml is not None and info.nvml.ok and info.nvml.code == 0
    assert info.driver_version == "535.183.01"
    assert info.cuda_driver_version == 12020
    assert info.nvml_library == "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.183.01"
    assert info.gpus is not None and len(info.gpus) == 8
    hot = info.gpus[2]
    assert hot.name == "NVIDIA H100 80GB HBM3"
    assert hot.uuid == "GPU-973565ff-45cf-12ea-4e91-33386720f7bb"
    assert hot.bus_id == "0000:75:00.0"
    assert hot.serial == "1654922018857"
    assert hot.vbios == "96.00.74.00.01"
    assert (hot.memory_total_mib, hot.memory_used_mib) == (81559, 9221)
    assert hot.compute_capability == "9.0"
    assert hot.pcie is not None
    assert (hot.pcie.gen_current, hot.pcie.gen_max, hot.pcie.gen_device_max) == (5, 5, 5)
    assert (hot.pcie.width_current, hot.pcie.width_max, hot.pcie.replay_counter) == (16, 16, 58)
    assert (hot.power_limit_w, hot.power_draw_w, hot.temperature_c) == (700.0, 118.01, 39)
    assert (hot.clock_sm_mhz, hot.clock_sm_max_mhz) == (1980, 1980)
    assert hot.throttle_reasons == ["sw_power_cap", "sw_thermal_slowdown", "hw_power_brake_slowdown"]
    assert hot.processes == [
        GpuProcess(pid=1002127, name="/usr/bin/python", used_memory_mib=9212, kind="compute")
    ]
    assert hot.ecc is not None and hot.ecc.mode_current is True
    assert (hot.ecc.remapped_uncorrectable, hot.ecc.remapped_pending) == (0, False)
    assert hot.ecc.retired_pages_sbe is None and hot.unavailable["ecc.retired_pages_sbe"] == NOT_SUPPORTED
    assert hot.fan_pct is None and hot.unavailable["fan_pct"] == NOT_SUPPORTED
    assert (hot.mig_mode_current, hot.persistence_mode, hot.compute_mode) == (False, True, "Default")
    # the other seven only idle, and have no processes
    assert all(g.throttle_reasons == ["gpu_idle"] for i, g in enumerate(info.gpus) if i != 2)
    assert all(g.processes == [] for i, g in enumerate(info.gpus) if i != 2)
    assert info.topology == [["X" if i == j else "NV18" for j in range(8)] for i in range(8)]
    assert info.fabric_manager == "active"  # every GPU: fabric state Completed, status Success
    assert info.kernel_module is not None and info.kernel_module.version == "535.183.01"


def test_a100_mig_instances(host, machine):
    machine("a100-sxm4-80gb-x4-mig-driver535.xml")

    (gpu,) = nvidia.probe(host.ctx()).gpus or []

    assert (gpu.mig_mode_current, gpu.mig_mode_pending) == (True, True)
    assert gpu.mig_devices is not None
    assert [
        (m.index, m.gpu_instance_id, m.compute_instance_id, m.memory_total_mib) for m in gpu.mig_devices
    ] == [
        (0, 3, 0, 19968),
        (1, 4, 0, 19968),
        (2, 5, 0, 19968),
        (3, 6, 0, 19968),
    ]
    # under MIG the whole-GPU utilisation is not reported
    assert gpu.utilization_gpu_pct is None and gpu.unavailable["utilization"] == NOT_SUPPORTED
    assert gpu.compute_capability == "8.0"
    assert gpu.memory_total_mib == 81920


def test_a10_remapped_rows_pending(host, machine):
    machine("a10-x1-driver535.q.txt")

    info = nvidia.probe(host.ctx())

    (gpu,) = info.gpus or []
    assert gpu.ecc is not None
    assert (gpu.ecc.remapped_correctable, gpu.ecc.remapped_uncorrectable) == (0, 4)
    assert (gpu.ecc.remapped_pending, gpu.ecc.remapped_failure) == (True, False)
    assert gpu.mig_mode_current is None and gpu.unavailable["mig_mode"] == NOT_SUPPORTED
    assert gpu.throttle_reasons == ["gpu_idle"]
    assert gpu.compute_capability == "8.6"
    assert info.topology == [["X"]]
    assert info.fabric_manager is None


def test_k80_ecc_errors_retired_pages_and_a_driver_430(host, machine):
    host.process(58813, "python")
    fake = machine("tesla-k80-x4-driver430-ecc-errors.xml")

    info = nvidia.probe(host.ctx())

    assert info.driver_version == "430.26"
    assert info.cuda_driver_version is None  # the capture says "Not Found" (taken in a container)
    assert info.unavailable is not None and info.unavailable["cuda_driver_version"] == "not found (NotFound)"
    gpus = info.gpus or []
    assert [g.bus_id for g in gpus] == ["1580:00:00.0", "2df7:00:00.0", "4968:00:00.0", "f8d6:00:00.0"]
    ecc = [g.ecc for g in gpus]
    assert all(e is not None for e in ecc)
    assert [(e.aggregate_corrected, e.aggregate_uncorrected) for e in ecc if e] == [
        (7, 7),
        (34, 4),
        (0, 0),
        (0, 0),
    ]
    assert [(e.retired_pages_sbe, e.retired_pages_dbe) for e in ecc if e] == [(1, 1), (1, 1), (0, 0), (0, 0)]
    assert all(e.retired_pages_pending is False for e in ecc if e)
    # driver 430 predates row remapping, MIG and the "clocks event" name
    assert (
        gpus[0].unavailable["ecc.remapped_rows"] == "function not in this driver: nvmlDeviceGetRemappedRows"
    )
    assert gpus[0].unavailable["mig_mode"] == "function not in this driver: nvmlDeviceGetMigMode"
    assert gpus[0].throttle_reasons == ["applications_clocks_setting"]
    # only the unversioned process query (v1 struct) exists there
    assert gpus[0].processes == [GpuProcess(pid=58813, name="python", used_memory_mib=576, kind="compute")]
    assert gpus[1].processes == [GpuProcess(pid=58642, name=None, used_memory_mib=576, kind="compute")]
    assert ("nvmlDeviceGetComputeRunningProcesses", 0) in fake.calls
    assert gpus[0].utilization_gpu_pct == 99 and gpus[0].clock_sm_mhz == 810


def test_gtx_680_old_geforce_mostly_not_supported(host, machine):
    fake = machine("gtx-680-x1-driver470.q.txt")

    (gpu,) = nvidia.probe(host.ctx()).gpus or []

    assert (gpu.name, gpu.compute_capability, gpu.memory_total_mib) == ("NVIDIA GeForce GTX 680", "3.0", 2000)
    assert (gpu.temperature_c, gpu.fan_pct) == (35, 37)
    for field in (
        "serial",
        "power_limit_w",
        "power_draw_w",
        "clock_sm_mhz",
        "utilization",
        "throttle_reasons",
        "pcie.gen_current",
        "pcie.width_max",
        "ecc.mode",
        "mig_mode",
    ):
        assert gpu.unavailable[field] == NOT_SUPPORTED, field
    assert gpu.power_limit_w is None and gpu.throttle_reasons is None and gpu.ecc is None
    # newer NVML functions are absent from driver 470
    assert gpu.unavailable["pcie.gen_device_max"] == (
        "function not in this driver: nvmlDeviceGetGpuMaxPcieLinkGeneration"
    )
    assert ("nvmlDeviceGetCurrentClocksEventReasons", 0) in fake.calls
    assert ("nvmlDeviceGetCurrentClocksThrottleReasons", 0) in fake.calls
    assert gpu.processes == []


def test_a100_x8_nvswitch_before_hopper_fabric_manager_from_process(host, machine):
    fake = machine("a100-sxm4-40gb-x8-driver460.q.txt", topology="a100-sxm-x8-topo.txt")
    host.write("/dev/nvidia-nvswitchctl", "")

    inactive = nvidia.probe(host.ctx())
    host.process(4242, "/usr/bin/nv-fabricmanager", comm="nv-fabricmanager")
    active = nvidia.probe(host.ctx())

    assert inactive.fabric_manager == "inactive" and active.fabric_manager == "active"
    assert "nvmlDeviceGetGpuFabricInfo" in fake.missing  # driver 460 has no fabric state
    assert active.topology == [["X" if i == j else "NV12" for j in range(8)] for i in range(8)]
    assert (active.gpus or [])[0].bus_id == "0001:00:00.0"  # Hyper-V PCI domain


def test_nvswitch_seen_only_on_the_pci_bus_still_asks_for_the_fabric_manager(host, machine):
    machine("a100-sxm4-40gb-x8-driver460.q.txt")  # no NVLink answers recorded
    host.pci("0000:c4:00.0", "0x1af1", driver="nvidia-nvswitch", cls="0x068000")

    info = nvidia.probe(host.ctx())

    assert info.fabric_manager == "inactive"
    assert info.topology == [["X" if i == j else "N/A" for j in range(8)] for i in range(8)]
    assert (info.unavailable or {})["topology"] == NOT_SUPPORTED


def test_nvlink_remote_type_unknown_on_old_driver_still_counts_switch_links(host, machine):
    fake = machine("a100-sxm4-40gb-x8-driver460.q.txt", topology="a100-sxm-x8-topo.txt")
    fake.drop("nvmlDeviceGetNvLinkRemoteDeviceType")

    info = nvidia.probe(host.ctx())

    assert info.topology == [["X" if i == j else "NV12" for j in range(8)] for i in range(8)]


def test_one_lost_gpu_does_not_lose_the_others(host, machine):
    fake = machine("rtx-4090-x8-driver535.q.txt", topology="rtx-4090-x8-topo.txt")
    fake.lose(3)

    info = nvidia.probe(host.ctx())

    gpus = info.gpus or []
    assert len(gpus) == 8
    assert gpus[3].unavailable == {"name": "GPU is lost"}
    assert gpus[3].name is None and gpus[3].processes is None
    assert fake.queried(3) == ["nvmlDeviceGetHandleByIndex", "nvmlDeviceGetName"]  # nothing asked after
    others = [g for g in gpus if g.index != 3]
    assert all(g.name == "NVIDIA GeForce RTX 4090" and g.memory_total_mib == 24564 for g in others)
    assert gpus[0].processes == [GpuProcess(pid=58130, name=None, used_memory_mib=20322, kind="compute")]
    assert info.topology is not None
    assert info.topology[3] == ["N/A", "N/A", "N/A", "X", "N/A", "N/A", "N/A", "N/A"]
    assert info.topology[0] == ["X", "SYS", "SYS", "N/A", "SYS", "SYS", "SYS", "SYS"]


def test_gpu_lost_before_its_handle(host, machine):
    fake = machine("rtx-4090-x8-driver535.q.txt")
    fake.fail("nvmlDeviceGetHandleByIndex", fake.NVML_ERROR_GPU_IS_LOST, gpu=5)

    gpus = nvidia.probe(host.ctx()).gpus or []

    assert gpus[5].unavailable == {"handle": "GPU is lost"}
    assert [g.name is not None for g in gpus] == [True] * 5 + [False] + [True] * 2
