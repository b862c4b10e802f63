"""GPU selection and health: CUDA_VISIBLE_DEVICES, MIG, ECC/remapping, throttling, PCIe, env."""

from __future__ import annotations

from envcheck.models import Ecc, Gpu, MigDevice, Pcie

# --------------------------------------------------------------------------- visible-devices


def test_empty_visible_devices_hides_everything(healthy, judge):
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = ""
    f = judge(healthy).one("visible-devices")
    assert f.commands == ["unset CUDA_VISIBLE_DEVICES"]


def test_index_that_does_not_exist(healthy, judge):
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = "1"
    f = judge(healthy).one("visible-devices")
    assert f.facts["unresolved"] == "1"


def test_bad_entry_hides_the_ones_after_it(healthy, judge, gpu):
    healthy.nvidia.gpus = [gpu(0), gpu(1), gpu(2)]
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = "0,GPU-deadbeef,2"
    f = judge(healthy).one("visible-devices")
    assert f.facts["ignored_after"] == ["2"]
    assert f.commands == ["export CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1,2"]


def test_valid_indices_and_uuid_prefixes(healthy, judge, gpu):
    healthy.nvidia.gpus = [gpu(0), gpu(1)]
    for value in ("0", "1,0", "GPU-4f1f8e1c-0b5e-4b0f-9d59-7c1f2a3b4c51"):
        healthy.system.env["CUDA_VISIBLE_DEVICES"] = value
        assert judge(healthy).of("visible-devices") == [], value
    del healthy.system.env["CUDA_VISIBLE_DEVICES"]
    assert judge(healthy).of("visible-devices") == []


def test_mixed_gpus_without_pci_bus_order(healthy, judge, gpu):
    other = Gpu(
        index=1,
        name="NVIDIA GeForce RTX 4090",
        uuid="GPU-11",
        compute_capability="8.9",
        memory_total_mib=24564,
    )
    healthy.nvidia.gpus = [gpu(0), other]
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = "1"
    f = judge(healthy).one("visible-devices")
    assert f.severity.value == "warning"
    healthy.system.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert judge(healthy).of("visible-devices") == []


def test_nvidia_visible_devices_void_in_a_container(no_gpu, judge):
    no_gpu.system.env["NVIDIA_VISIBLE_DEVICES"] = "void"
    assert "void" in judge(no_gpu).one("visible-devices").summary


# --------------------------------------------------------------------------- MIG


def test_mig_enabled_without_instances(healthy, judge):
    healthy.nvidia.gpus[0].mig_mode_current = True
    healthy.nvidia.gpus[0].mig_mode_pending = True
    f = judge(healthy).one("mig-no-instances")
    assert f.subject.startswith("GPU 0")


def test_mig_with_instances_is_fine_and_pending_change_is_flagged(healthy, judge):
    g = healthy.nvidia.gpus[0]
    g.mig_mode_current, g.mig_mode_pending = True, True
    g.mig_devices = [MigDevice(index=0, uuid="MIG-aaaa"), MigDevice(index=1, uuid="MIG-bbbb")]
    v = judge(healthy)
    assert v.of("mig-no-instances") == [] and v.of("mig-mode-pending") == []
    g.mig_mode_pending = False
    assert judge(healthy).one("mig-mode-pending").commands == ["sudo nvidia-smi -i 0 -r"]


def test_more_than_one_mig_instance_per_process(healthy, judge):
    g = healthy.nvidia.gpus[0]
    g.mig_mode_current, g.mig_mode_pending = True, True
    g.mig_devices = [MigDevice(index=0, uuid="MIG-aaaa"), MigDevice(index=1, uuid="MIG-bbbb")]
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = "MIG-aaaa,MIG-bbbb"
    f = judge(healthy).one("mig-multiple-visible")
    assert f.severity.value == "warning"
    assert f.commands == ["export CUDA_VISIBLE_DEVICES=MIG-aaaa"]
    healthy.system.env["CUDA_VISIBLE_DEVICES"] = "MIG-bbbb"
    assert judge(healthy).of("mig-multiple-visible") == []


# --------------------------------------------------------------------------- gpu-memory-errors


def test_remapping_pending_needs_a_reset(healthy, judge):
    healthy.nvidia.gpus[0].ecc.remapped_pending = True
    f = judge(healthy).one("gpu-memory-errors")
    assert f.commands == ["sudo nvidia-smi -i 0 -r"]


def test_remapping_failure_means_rma(healthy, judge):
    healthy.nvidia.gpus[0].ecc.remapped_failure = True
    assert "RMA" in judge(healthy).one("gpu-memory-errors").fix


def test_volatile_uncorrectable_errors(healthy, judge):
    healthy.nvidia.gpus[0].ecc.volatile_uncorrected = 3
    assert "3 uncorrectable" in judge(healthy).one("gpu-memory-errors").summary


def test_clean_ecc_and_unknown_ecc(healthy, judge):
    assert judge(healthy).of("gpu-memory-errors") == []
    healthy.nvidia.gpus[0].ecc = None
    assert "ECC" in judge(healthy).skipped["gpu-memory-errors"]


def test_ecc_counters_correctable_only_are_fine(healthy, judge):
    healthy.nvidia.gpus[0].ecc = Ecc(mode_current=True, volatile_corrected=12, volatile_uncorrected=0)
    assert judge(healthy).of("gpu-memory-errors") == []


# --------------------------------------------------------------------------- gpu-throttled


def test_thermal_slowdown(healthy, judge):
    healthy.nvidia.gpus[0].throttle_reasons = ["sw_thermal_slowdown", "hw_thermal_slowdown"]
    healthy.nvidia.gpus[0].temperature_c = 91
    f = judge(healthy).one("gpu-throttled")
    assert "91 C" in f.summary and "cooling" in f.fix


def test_power_cap_and_idle_are_normal(healthy, judge):
    healthy.nvidia.gpus[0].throttle_reasons = ["sw_power_cap", "gpu_idle"]
    assert judge(healthy).of("gpu-throttled") == []


# --------------------------------------------------------------------------- pcie-downgraded


def test_idle_gpu_downclocking_its_link_is_not_a_downgrade(healthy, judge):
    # the recorded L4 at idle: Gen1 x8 now, Gen4 x16 max, GPU max Gen4
    healthy.nvidia.gpus[0].pcie = Pcie(
        gen_current=1, gen_max=4, gen_device_max=4, width_current=8, width_max=16
    )
    assert judge(healthy).of("pcie-downgraded") == []


def test_slot_caps_the_generation(healthy, judge):
    healthy.nvidia.gpus[0].pcie = Pcie(
        gen_current=1, gen_max=3, gen_device_max=4, width_current=16, width_max=16
    )
    f = judge(healthy).one("pcie-downgraded")
    assert "Gen3" in f.summary and "Gen4" in f.summary


def test_link_at_full_speed_but_narrow(healthy, judge):
    healthy.nvidia.gpus[0].pcie = Pcie(
        gen_current=4, gen_max=4, gen_device_max=4, width_current=8, width_max=16
    )
    assert "x8 of x16" in judge(healthy).one("pcie-downgraded").summary


# --------------------------------------------------------------------------- cuda-debug-env


def test_launch_blocking_and_injection(healthy, judge):
    healthy.system.env.update({"CUDA_LAUNCH_BLOCKING": "1", "CUDA_INJECTION64_PATH": "/opt/tool.so"})
    f = judge(healthy).one("cuda-debug-env")
    assert f.commands == ["unset CUDA_INJECTION64_PATH CUDA_LAUNCH_BLOCKING"]


def test_no_debug_env(healthy, judge):
    healthy.system.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert judge(healthy).of("cuda-debug-env") == []
