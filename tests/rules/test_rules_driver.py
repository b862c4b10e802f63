"""Driver-layer rules: no-driver vs driver-too-old (the pitfall), mismatch, nouveau, WSL, cuInit,
fabric manager."""

from __future__ import annotations

from envcheck.models import ContainerInfo, KernelModule, NvmlStatus, PciDevice


def _no_driver(s):
    """The healthy machine after its driver was removed: GPU on the bus, no libnvidia-ml, runtime says 0."""
    s.nvidia.nvml = NvmlStatus(ok=False, code=12, name="LIBRARY_NOT_FOUND")
    s.nvidia.kernel_module = KernelModule(loaded=False, nouveau_loaded=False)
    s.nvidia.driver_version = None
    s.nvidia.cuda_driver_version = None
    s.nvidia.gpus = None
    s.nvidia.nvml_library = None
    s.nvidia.device_nodes = []
    s.cuda.driver_version = 0
    s.cuda.device_count_code = 35
    s.cuda.cu_init_code = None
    return s


# --------------------------------------------------------------------------- no-driver


def test_no_driver_when_gpu_on_bus_and_runtime_reports_zero(healthy, judge):
    v = judge(_no_driver(healthy))
    f = v.one("no-driver")
    assert f.severity.value == "error"
    # torch cu126 needs CUDA 12 -> 525.60.13; Ubuntu gets the R580 package
    assert f.facts["driver_needed"] == "525.60.13"
    assert f.commands[0] == "sudo apt-get install -y nvidia-driver-580"
    assert f.facts["gpus_on_pci"] == ["0000:07:00.0"]


def test_no_driver_is_not_driver_too_old(healthy, judge):
    """cudaGetDeviceCount gives 35 'insufficient driver' with no driver at all: that is no driver."""
    s = _no_driver(healthy)
    s.frameworks.frameworks[0].cuda_build = "13.0"  # a CUDA 13 build, which a real old driver would fail
    s.frameworks.frameworks[0].deep = None
    v = judge(s)
    assert v.of("driver-too-old") == []
    assert "driver-too-old" not in v.skipped
    assert v.one("no-driver").facts["driver_needed"] == "580.65.06"


def test_no_driver_generic_command_off_ubuntu(healthy, judge):
    s = _no_driver(healthy)
    s.system.distro = "Rocky Linux 9.3"
    assert judge(s).one("no-driver").commands == ["install NVIDIA driver >= 525.60.13"]


def test_kernel_module_not_loaded_suggests_dkms(healthy, judge):
    s = _no_driver(healthy)
    s.nvidia.nvml = NvmlStatus(ok=False, code=9, name="DRIVER_NOT_LOADED")
    s.nvidia.nvml_library = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.124.06"
    f = judge(s).one("no-driver")
    assert "kernel module is not loaded" in f.summary
    assert "sudo dkms autoinstall" in f.commands


def test_no_driver_negative_on_healthy_and_on_machine_without_gpu(healthy, no_gpu, judge):
    assert judge(healthy).of("no-driver") == []
    assert judge(no_gpu).of("no-driver") == []


def test_no_driver_skips_when_bus_and_driver_state_unknown(healthy, judge):
    s = healthy
    s.nvidia.pci_devices = None
    s.nvidia.gpus = None
    s.nvidia.nvml = None
    s.nvidia.driver_version = None
    v = judge(s)
    assert v.of("no-driver") == []
    assert "no-driver" in v.skipped


# --------------------------------------------------------------------------- driver-too-old


def test_cu130_wheel_on_r570_driver_is_too_old(healthy, judge):
    s = healthy
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.9.0+cu130", "13.0", None
    f = judge(s).one("driver-too-old")
    assert f.subject == "torch"
    assert f.facts["framework_cuda"] == "13.0"
    assert f.facts["driver_cuda"] == "12.8"
    assert f.facts["family_floor"] == "580"
    # keep the driver: the same release's CUDA 12.8 build covers the A100 and runs on R570 (uninstall first:
    # pip counts 2.9.0+cu130 as satisfying torch==2.9.0) ...
    assert f.commands == [
        "pip uninstall -y torch",
        "pip install torch==2.9.0 --index-url https://download.pytorch.org/whl/cu128",
    ]
    # ... or upgrade the driver
    assert "sudo apt-get install -y nvidia-driver-580" in f.fix


def test_minor_version_compatibility_is_not_too_old(healthy, judge):
    """torch cu126 on an R535 driver (CUDA 12.2): same major, above 525.60.13, so it runs."""
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "535.54.03", 12020
    s.cuda.driver_version = 12020
    v = judge(s)
    assert v.of("driver-too-old") == []
    assert "driver-too-old" not in v.skipped


def test_tensorflow_on_r470_is_too_old_driver_upgrade_only(healthy, judge, tensorflow_fw):
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "470.82.01", 11040
    s.cuda.driver_version = 11040
    s.frameworks.frameworks[1] = tensorflow_fw()
    found = {f.subject: f for f in judge(s).of("driver-too-old")}
    assert set(found) == {"torch", "tensorflow"}
    assert found["tensorflow"].commands == ["sudo apt-get install -y nvidia-driver-580", "sudo reboot"]
    # R470 runs CUDA 11.x: the same torch release has a cu118 build
    assert (
        found["torch"].commands[-1]
        == "pip install torch==2.7.1 --index-url https://download.pytorch.org/whl/cu118"
    )


def test_release_without_an_old_cuda_build_falls_back_to_newest_release_that_has_one(healthy, judge):
    s = healthy
    s.nvidia.driver_version, s.nvidia.cuda_driver_version = "470.82.01", 11040
    s.cuda.driver_version = 11040
    torch = s.frameworks.frameworks[0]
    torch.version, torch.cuda_build, torch.deep = "2.9.0+cu128", "12.8", None
    f = judge(s).one("driver-too-old")
    assert f.commands[-1] == "pip install torch==2.7.1 --index-url https://download.pytorch.org/whl/cu118"


def test_jax_cuda13_plugin_on_r570_suggests_cuda12_plugin(healthy, judge, jax_fw):
    s = healthy
    s.frameworks.frameworks[2] = jax_fw()
    f = next(f for f in judge(s).of("driver-too-old") if f.subject == "jax")
    assert f.facts["framework_cuda"] == "13.x"
    assert f.commands == ["pip uninstall -y jax-cuda13-plugin", 'pip install -U "jax[cuda12]"']


def test_driver_too_old_skips_when_a_paste_gives_no_driver_version(healthy, judge):
    """A collect_env paste with a CUDA torch but 'Nvidia driver version: Could not collect'."""
    s = healthy
    s.source = "collect_env"
    s.nvidia.driver_version = None
    s.nvidia.cuda_driver_version = None
    s.nvidia.nvml = None
    s.cuda.driver_version = None
    v = judge(s)
    assert v.of("driver-too-old") == []
    assert v.skipped["driver-too-old"] == "driver version unknown"


def test_collect_env_paste_with_old_driver(judge):
    from envcheck.ingest import collect_env

    text = "\n".join(
        [
            "PyTorch version: 2.5.1+cu121",
            "Is debug build: False",
            "CUDA used to build PyTorch: 12.1",
            "ROCM used to build PyTorch: N/A",
            "",
            "OS: Ubuntu 20.04.6 LTS (x86_64)",
            "Libc version: glibc-2.31",
            "",
            "Python version: 3.10.12 (main, Nov 20 2023, 15:14:05) [GCC 11.4.0] (64-bit runtime)",
            "Is CUDA available: False",
            "CUDA runtime version: 11.4.152",
            "GPU models and configuration: GPU 0: NVIDIA GeForce RTX 3090",
            "Nvidia driver version: 470.223.02",
            "cuDNN version: Could not collect",
        ]
    )
    v = judge(collect_env.parse(text, "paste"))
    f = v.one("driver-too-old")
    assert f.facts["driver_version"] == "470.223.02"
    assert f.commands[-1] == "pip install torch==2.5.1 --index-url https://download.pytorch.org/whl/cu118"


# --------------------------------------------------------------------------- driver-library-mismatch


def test_nvml_18_is_driver_library_mismatch(healthy, judge):
    s = healthy
    s.nvidia.nvml = NvmlStatus(ok=False, code=18, name="LIB_RM_VERSION_MISMATCH")
    s.nvidia.nvml_library = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.133.07"
    v = judge(s)
    f = v.one("driver-library-mismatch")
    assert "570.124.06" in f.summary and "570.133.07" in f.summary
    assert f.commands[0] == "sudo reboot"
    assert v.of("no-driver") == []


def test_module_and_library_versions_agree_is_fine(healthy, judge):
    assert judge(healthy).of("driver-library-mismatch") == []


# --------------------------------------------------------------------------- nouveau


def test_gpu_bound_to_nouveau(healthy, judge):
    s = healthy
    s.nvidia.pci_devices[0].driver = "nouveau"
    s.nvidia.kernel_module = KernelModule(loaded=False, nouveau_loaded=True)
    f = judge(s).one("nouveau-loaded")
    assert f.facts["bound_to_nouveau"] == ["0000:07:00.0"]
    assert any("blacklist nouveau" in c for c in f.commands)


def test_nouveau_absent(healthy, no_gpu, judge):
    assert judge(healthy).of("nouveau-loaded") == []
    assert judge(no_gpu).of("nouveau-loaded") == []


# --------------------------------------------------------------------------- WSL


def _wsl(s):
    s.system.container = ContainerInfo(wsl=True)
    s.nvidia.pci_devices = []
    s.nvidia.kernel_module = KernelModule(loaded=False)
    s.nvidia.dxg = True
    s.nvidia.nvml_library = "/usr/lib/wsl/lib/libnvidia-ml.so.1"
    s.cuda.libraries[1].path = "/usr/lib/wsl/lib/libcuda.so.1"
    s.cuda.libraries[1].origin = "wsl"
    return s


def test_wsl_with_windows_driver_only_is_fine(healthy, judge):
    assert judge(_wsl(healthy)).of("wsl-linux-driver") == []


def test_wsl_with_a_linux_driver_installed(healthy, judge):
    s = _wsl(healthy)
    s.cuda.libraries[1].path = "/usr/lib/x86_64-linux-gnu/libcuda.so.1"
    f = judge(s).one("wsl-linux-driver")
    assert f.facts["driver_libraries_outside_wsl_lib"] == ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
    assert "wsl.exe --shutdown" in f.commands


# --------------------------------------------------------------------------- cuInit 999, fabric manager


def test_cuinit_999_after_resume(healthy, judge):
    s = healthy
    s.cuda.cu_init_code = 999
    f = judge(s).one("cuda-init-failed")
    assert f.commands[0] == "sudo rmmod nvidia_uvm && sudo modprobe nvidia_uvm"
    s.cuda.cu_init_code = 0
    assert judge(s).of("cuda-init-failed") == []


def test_error_802_means_fabric_manager(healthy, judge):
    s = healthy
    s.cuda.device_count_code = 802
    s.nvidia.fabric_manager = "inactive"
    s.nvidia.pci_devices.append(
        PciDevice(
            address="0000:c1:00.0",
            vendor_id="0x10de",
            device_id="0x1af1",
            class_id="0x068000",
            driver="nvidia-nvswitch",
        )
    )
    f = judge(s).one("fabric-manager-missing")
    assert f.facts["nvswitches"] == ["0000:c1:00.0"]
    assert f.commands == [
        "sudo apt-get install -y nvidia-fabricmanager-570",
        "sudo systemctl enable --now nvidia-fabricmanager",
    ]


def test_fabric_manager_active_or_absent(healthy, judge):
    assert judge(healthy).of("fabric-manager-missing") == []
    healthy.nvidia.fabric_manager = "active"
    assert judge(healthy).of("fabric-manager-missing") == []
    healthy.nvidia.fabric_manager = "inactive"
    assert len(judge(healthy).of("fabric-manager-missing")) == 1


def test_runtime_zero_alone_means_no_driver_even_without_nvml_facts(healthy, judge):
    """Only the CUDA runtime was asked (no NVML result): cudaDriverGetVersion == 0 decides."""
    s = _no_driver(healthy)
    s.nvidia.nvml = None
    s.frameworks.frameworks[0].deep = None
    v = judge(s)
    assert v.of("driver-too-old") == []
    assert "driver-too-old" not in v.skipped
    assert v.one("no-driver").facts["cudaDriverGetVersion"] == 0


def test_missing_libcuda_is_no_driver_not_too_old(healthy, judge):
    s = _no_driver(healthy)
    s.nvidia.nvml = None
    s.cuda.driver_version = None
    s.cuda.libraries[1].path = None
    s.cuda.libraries[1].error = "not found: libcuda.so.1"
    v = judge(s)
    assert v.of("driver-too-old") == []
    assert "driver-too-old" not in v.skipped


def test_loaded_driver_failing_otherwise_is_not_no_driver(healthy, judge):
    s = healthy
    s.nvidia.nvml = NvmlStatus(ok=False, code=999, name="UNKNOWN")
    s.nvidia.driver_version = None
    v = judge(s)
    assert v.of("no-driver") == []
    assert "no-driver" not in v.skipped
