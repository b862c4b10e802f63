"""Real pastes from public bug reports (tests/fixtures/ingest, sources in corpus.toml), read by ingest
and judged by today's rules as ``envcheck diagnose`` does. Each rule that reads pasted error lines is
tested here on a real line; the whole corpus is scored in tests/ingest/test_ingest_corpus.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.ingest import load
from envcheck.models import Finding, Report, Severity
from envcheck.report import rejudge

PASTES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def diagnose(*names: str) -> Report:
    text = "\n\n".join((PASTES / n).read_text(encoding="utf-8") for n in names)
    return rejudge(load(text, names[0]))


def one(report: Report, rule_id: str) -> Finding:
    [f] = [f for f in report.findings if f.id == rule_id]
    return f


def test_rtx_5090d_with_cu126_gets_a_build_whose_cuda_knows_blackwell():
    # pytorch/pytorch#150733: torch 2.6.0+cu126, RTX 5090 D (CC 12.0), driver 570.124.04
    report = diagnose("pytorch-150733_rtx5090d_cu126_warning.txt")
    f = one(report, "arch-unsupported")
    assert "built with CUDA 12.6, compute capability 12.0 needs CUDA >= 12.8" in f.summary
    # driver 570 runs cu128/cu129 (>= 525.60.13 by minor-version compatibility) but no cu13x (>= 580):
    # the newest release with such a build is 2.13 (+cu129, a row from release notes: said so)
    assert f.commands == [
        "pip uninstall -y torch",
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu129",
    ]
    assert "not verified against the wheel" in f.fix
    assert "CUDA 12.4" not in f.fix  # the old wrong advice: cu124 "has code for 12.0" through PTX
    assert [x.id for x in report.findings if x.id == "arch-ptx-jit"] == []


def test_a100_with_torch_built_for_cuda_10_2():
    # pytorch/pytorch#57922: torch 1.8.1+cu102 on an A100 (MIG); the cu102 wheel's arch list (read
    # from the PyPI wheel) stops at sm_70, and 1.8.1 also shipped +cu111, which driver 450.80.02 runs
    report = diagnose("pytorch-57922_a100_mig_cu102.txt")
    f = one(report, "arch-unsupported")
    assert f.facts["compute_capability"] == "8.0"
    assert f.facts["arch_list"] == ["sm_37", "sm_50", "sm_60", "sm_70"]
    assert "built with CUDA 10.2, compute capability 8.0 needs CUDA >= 11.0" in f.summary
    assert (
        f.commands[-1]
        == "pip install torch==1.8.1+cu111 -f https://download.pytorch.org/whl/torch_stable.html"
    )
    assert "runs on driver 450.80.02" in f.fix and "not verified against the wheel" in f.fix
    assert [x for x in report.findings if x.id == "knowledge-partial"] == []


def test_driver_410_with_torch_built_for_cuda_10_1():
    # pytorch/pytorch#28321: torch 1.3.0 (CUDA 10.1.243) on a T4 with driver 410.104: CUDA unavailable
    f = one(diagnose("pytorch-28321_debian9_t4_torch13_old_format.txt"), "driver-too-old")
    assert f.facts["framework_cuda"] == "10.1" and f.facts["driver_version"] == "410.104"
    assert f.facts["family_floor"] == "418.39"
    assert f.commands == ["install NVIDIA driver >= 418.39"]  # Debian 9: no package name we know


# --------------------------------------------------------------------------- rules that read error lines


def test_gpu_too_old_names_the_last_cuda_driver_and_torch():
    # pytorch/pytorch#16712: GTX 670M (Fermi, CC 2.1) with torch 1.0
    f = one(diagnose("pytorch-16712_gtx670m_fermi_cc21_torch10.txt"), "gpu-too-old")
    assert f.severity is Severity.ERROR
    assert (f.facts["compute_capability"], f.facts["last_cuda"], f.facts["last_driver_branch"]) == (
        "2.1",
        "8.0",
        "R390",
    )
    assert f.facts["newest_torch"] is None and "CPU" in (f.fix or "")
    # alievk/avatarify-python#58: GTX 660 Ti (CC 3.0): the last PyTorch with its code was 0.3.0
    f = one(diagnose("avatarify-58_gtx660ti_cc30_min35_no_kernel_image.txt"), "gpu-too-old")
    assert f.facts["newest_torch"] == "0.3.0" and f.facts["last_driver_branch"] == "R470"


def test_a_gpu_current_builds_still_serve_is_not_too_old():
    # peterjc123/pytorch-scripts#13: torch 0.3.1 dropped CC 5.0, but today's cu126 builds carry it
    report = diagnose("pytorch-scripts-13_gtx960m_cc50_torch031_too_old.txt")
    assert "gpu-too-old" not in {f.id for f in report.findings}
    assert "cu126" in one(report, "arch-unsupported").commands[-1]


def test_no_kernel_image_without_gpu_facts_says_what_it_assumed():
    # CSAILVision/unifiedparsing#6: "cudaCheckError() failed : no kernel image is available ..."
    f = one(diagnose("unifiedparsing-6_k80_cudacheckerror_no_kernel_image.txt"), "no-kernel-image")
    assert f.facts["error_lines"] and f.facts["assumed"]


def test_no_kernel_image_when_torch_covers_the_gpu_blames_the_extension():
    # a healthy RTX 4090 + cu121 report (vllm-project/vllm#13497) with the error line of unifiedparsing#6
    report = diagnose(
        "vllm-13497_old_format_rtx4090_cu121_stale_cudnn8_healthy.txt",
        "unifiedparsing-6_k80_cudacheckerror_no_kernel_image.txt",
    )
    f = one(report, "no-kernel-image")
    assert "belongs to another library" in f.summary and 'TORCH_CUDA_ARCH_LIST="8.9"' in f.commands[0]
    assert "arch-unsupported" not in {x.id for x in report.findings}


def test_no_cuda_device_points_at_cuda_visible_devices():
    # pytorch/pytorch#1040: CUDA_VISIBLE_DEVICES=2 python main.py -> error=38 (no device, pre-10.1 numbering)
    report = diagnose("pytorch-1040_2017_error38_cuda_visible_devices_2.txt")
    f = one(report, "no-cuda-device")
    assert f.facts["CUDA_VISIBLE_DEVICES"] == "2" and "CUDA_VISIBLE_DEVICES=2" in (f.fix or "")
    # the nvidia-smi table is cut after one GPU: "index 2 does not exist" is only a guess
    v = one(report, "visible-devices")
    assert v.severity is Severity.WARNING and "every GPU" in v.facts["assumed"][-1]


def test_cuda_compat_unsupported_on_a_geforce_with_compat_libraries():
    # SYSTRAN/faster-whisper#653: driver 470.57.02 reports CUDA 12.1 -> the compat libraries are loaded
    f = one(diagnose("faster-whisper-653_error804_2080ti_driver470_cuda121.txt"), "cuda-compat-unsupported")
    assert "reports a newer CUDA than it supports" in f.summary and "reboot" in (f.fix or "")
    assert one(diagnose("cusignal-398_error804_quadro_reboot.txt"), "cuda-compat-unsupported")


def test_cuda_libs_too_old_decodes_jax_numbers():
    # jax-ml/jax#18027: "Found cuBLAS version 120205, but JAX was built against version 120304"
    f = one(diagnose("jax-18027_cublas_120205_vs_120304_pip_grep_nvidia.txt"), "cuda-libs-too-old")
    assert (f.facts["found"], f.facts["built"]) == ("12.2.5", "12.3.4")
    # hollowstrawberry/kohya-colab#94: "Found CUDA version 12010, but JAX was built against version 12020"
    f = one(diagnose("kohya-colab-94_jax_found_cuda_12010_built_12020.txt"), "cuda-libs-too-old")
    assert (f.facts["found"], f.facts["built"]) == ("12.1", "12.2")


def test_jax_plugin_mismatch():
    # jax-ml/jax#22416: Mismatched PJRT plugin PJRT API version (0.54) and framework PJRT API version 0.51
    f = one(diagnose("jax-22416_mismatched_pjrt_plugin_api.txt"), "jax-plugin-mismatch")
    assert f.facts["plugin"] == "0.54" and "jax[cuda12]" in f.commands[-1]


def test_container_toolkit_missing_from_the_docker_error_and_from_docker_info():
    # OpenBMB/XAgent#273: could not select device driver "" with capabilities: [[gpu]]
    f = one(diagnose("xagent-273_docker_could_not_select_device_driver.txt"), "container-toolkit-missing")
    assert "nvidia-ctk runtime configure --runtime=docker" in " ".join(f.commands)
    # NVIDIA/nvidia-container-toolkit#653: docker info lists only runc
    f = one(
        diagnose("nvidia-container-toolkit-653_docker_info_no_nvidia_runtime.txt"),
        "container-toolkit-missing",
    )
    assert f.facts["docker_runtimes"] == ["io.containerd.runc.v2", "runc"]


def test_container_no_host_driver():
    # docker/for-win#13835: nvidia-container-cli: ... load library failed: libnvidia-ml.so.1
    f = one(
        diagnose("docker-for-win-13835_nvidia_container_cli_libnvidia_ml.txt"), "container-no-host-driver"
    )
    assert "host" in f.summary


@pytest.mark.parametrize(
    ("name", "rule_id"),
    [
        ("yuan2-65_driver_too_old_11000_userwarning.txt", "driver-too-old"),  # torch: found version 11000
        ("open-remode-9_error35_driver_340_cuda70.txt", "driver-too-old"),  # CUDA error 35
        (
            "nvidia-304-11_smi_failed_communicate_driver_debian12.txt",
            "no-driver",
        ),  # NVIDIA-SMI has failed ...
        ("shine-cluster-30_nvml_mismatch_unattended_upgrade.txt", "driver-library-mismatch"),
        ("pytorch-35710_error802_bandwidthtest.txt", "fabric-manager-missing"),  # error 802
        ("tensorrt-insight-36_cuda_999_ld_library_path_libcuda.txt", "cuda-init-failed"),  # 999
        (
            "behaviormetrics-385_tf_dlopen_cudnn8_skipping_gpu.txt",
            "cuda-libs-missing",
        ),  # dlopen libcudnn.so.8
        ("deeplab2-66_tf_cudnn_804_vs_810.txt", "cudnn-mismatch"),  # Loaded runtime CuDNN library
        ("gcbfplus-1_jax_found_cudnn_8600_built_8906.txt", "cudnn-mismatch"),  # JAX: Found cuDNN version
        ("nvidia-docker-1163_container_no_libnvidia_ml_ldconfig.txt", "container-no-gpu"),
        ("berkeley-humanoid-49_rtx5090_torch251_cu121_bullets.txt", "arch-unsupported"),
    ],
)
def test_error_lines_give_the_structured_verdict_when_the_paste_lacks_the_facts(name: str, rule_id: str):
    f = one(diagnose(name), rule_id)
    assert f.severity is Severity.ERROR
    assert f.facts.get("error_lines") or f.facts.get("nvml") or f.facts.get("cu_init_code") == 999


def test_a_harmless_tensorrt_warning_is_not_missing_cuda_libraries():
    # OCR-D/ocrd_all#220 logs libnvinfer (TensorRT) dlopen failures, which TensorFlow only warns about
    text = (
        "2020-11-23 08:56:22.527341: W tensorflow/stream_executor/platform/default/dso_loader.cc:55] Could "
        "not "
        "load dynamic library 'libnvinfer.so.6'; dlerror: libnvinfer.so.6: cannot open shared object file\n"
        "2020-11-23 08:56:22.527425: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:30] Cannot dlopen "
        "some "
        "TensorRT libraries. If you would like to use Nvidia GPU with TensorRT, please make sure the missing "
        "libraries mentioned above are installed properly.\n"
    )
    report = rejudge(load(text, "ocrd"))
    assert "cuda-libs-missing" not in {f.id for f in report.findings}


def test_a_cpu_build_line_is_an_error_only_beside_an_nvidia_driver():
    # X-PLUG/MobileAgent#60: "Torch not compiled with CUDA enabled" with nvidia-smi's 475.14 header
    f = one(diagnose("mobileagent-60_torch_not_compiled_cuda_smi_475_title.txt"), "cpu-only-wheel")
    assert f.severity == Severity.ERROR and f.facts["driver_version"] == "475.14"
    assert f.commands[-1].endswith("--index-url https://download.pytorch.org/whl/cu118")  # runs on R475
    # pytorch/pytorch#28111: the same line from a machine without a GPU: a warning that says so
    f = one(diagnose("pytorch-28111_torch_not_compiled_cuda_no_gpu_wanted.txt"), "cpu-only-wheel")
    assert f.severity == Severity.WARNING and f.facts["assumed"]
    assert "run on the CPU" in f.fix
    # JeffSHF/ColabDock#28: JAX's "a CUDA-enabled jaxlib is not installed" beside driver 550.144.03
    f = one(diagnose("colabdock-28_jax_cpu_jaxlib_smi_550.txt"), "cpu-only-wheel")
    assert f.severity == Severity.ERROR and f.subject == "jax"
    assert f.commands == ['pip install -U "jax[cuda12]"']  # R550 is below the cuda13 plugin's R580


def test_nvml_unknown_error_in_a_container_is_a_lost_gpu():
    # NVIDIA/nvidia-docker#1671: nvidia-smi in a `docker run --gpus all` shell after daemon-reload
    f = one(diagnose("nvidia-docker-1671_nvml_unknown_error_after_daemon_reload.txt"), "container-gpu-lost")
    assert f.severity == Severity.ERROR and "docker run --gpus all" in str(f.facts["container"])
    assert not [x for x in diagnose("nvidia-docker-1671_nvml_unknown_error_after_daemon_reload.txt").findings
                if x.id in ("no-driver", "driver-library-mismatch")]  # fmt: skip


def test_torch_built_for_an_older_cuda_than_the_gpu_needs():
    # Tencent/FaceDetection-DSFD#36: "requires CUDA_VERSION >= 9000 ... compiled with CUDA_VERSION 8000",
    # wrapped over four indented lines
    f = one(diagnose("facedetection-dsfd-36_rtx2080ti_torch_cuda8000_nvcc10.txt"), "arch-unsupported")
    assert f.facts["framework_cuda"] == "8.0" and f.facts["needs_cuda"] == "9.0"
    assert "GeForce RTX 2080 Ti" in f.summary
    assert any("driver" in a for a in f.facts["assumed"])  # the paste gives no driver: said


# --------------------------------------------------------------------------- held-out round 1 (2026-12-08)


def test_wsl1_has_no_gpu():
    # ShivamShrirao/diffusers#18: diffusers-cli env on "Linux-4.4.0-19041-Microsoft" (a WSL1 kernel)
    f = one(diagnose("shivam-diffusers-18_diffusers_env_wsl1_kernel_cuda_false.txt"), "wsl1-no-gpu")
    assert f.severity is Severity.ERROR and f.facts["kernel"] == "4.4.0-19041-Microsoft"
    assert "wsl --set-version <distro> 2" in f.commands
    # a WSL2 kernel is not WSL1
    assert not [x for x in diagnose("vllm-12378_rhel84_a100_cu121_prompt_healthy.txt").findings
                if x.id == "wsl1-no-gpu"]  # fmt: skip


def test_an_image_that_needs_a_newer_cuda_than_the_host_driver():
    # SyneRBI/PETRIC2#27: "unsatisfied condition: cuda>=12.8" and the Windows driver 551.78 (CUDA 12.4)
    f = one(diagnose("petric2-27_requirement_cuda128_windows_driver551_docker_desktop.txt"), "driver-too-old")
    assert f.facts["image_needs_cuda"] == "12.8" and f.facts["driver_cuda"] == "12.4"
    assert "570.26" in f.fix  # the toolkit's own driver: the hook compares versions without compatibility
    # NVIDIA/nvidia-docker#1442: the same error with no driver facts says what it assumed
    f = one(diagnose("nvidia-docker-1442_requirement_cuda110_old_driver.txt"), "driver-too-old")
    assert f.facts["assumed"] and "container-toolkit-missing" not in {
        x.id for x in diagnose("nvidia-docker-1442_requirement_cuda110_old_driver.txt").findings
    }


def test_wsl_without_adapters_is_a_host_without_a_usable_gpu():
    # AbdBarho/stable-diffusion-webui-docker#117: WSL1 and "WSL environment detected but no adapters"
    f = one(diagnose("sd-webui-docker-117_wsl1_no_adapters.txt"), "container-no-host-driver")
    assert "WSL1" in f.fix and "wsl --update" in f.commands


def test_an_nvml_mismatch_line_beside_a_working_nvidia_smi_is_still_reported():
    # NVIDIA/nvidia-container-toolkit#394: the hook's NVML mismatch (title), then nvidia-smi after a reboot
    f = one(diagnose("nvidia-container-toolkit-394_cli_nvml_mismatch_title_then_working_smi.txt"),
            "driver-library-mismatch")  # fmt: skip
    assert f.facts["driver_version"] == "550.54.14" and "already gone" in f.fix


def test_tensorflow_after_2_10_on_native_windows_is_a_cpu_build():
    # tensorflow/tensorflow#73368: TF 2.17.0 on Windows 11, nvidia-smi 555.99 (WDDM, RTX 4050)
    f = one(diagnose("tensorflow-73368_tf217_windows11_nvcc125_smi_wddm_rtx4050_cut.txt"), "cpu-only-wheel")
    assert f.severity is Severity.ERROR and "native Windows" in f.summary
    assert any("WSL2" in c or "wsl" in c for c in f.commands)
    assert not any(c.startswith('pip install "tensorflow[and-cuda]==') for c in f.commands)


def test_a_cuda_mismatch_that_broke_an_extension_build_is_an_error():
    # deepspeedai/DeepSpeed#2902: "Installed CUDA version 12.0 does not match ... compiled with 11.7"
    f = one(diagnose("deepspeed-2902_windows_installed_cuda120_vs_torch117.txt"), "cuda-toolkit-mismatch")
    assert f.severity is Severity.ERROR and f.facts["error_lines"]
    assert not any("apt-get" in c for c in f.commands)  # the traceback's C:\ paths: a Windows machine


def test_no_kernel_image_with_openmmlab_arch_flags_blames_the_extension():
    # open-mmlab/mmdetection#4825: torch 1.6.0 built with sm_70, V100s, "no kernel image" (title)
    f = one(diagnose("mmdetection-4825_mmcv_env_v100_pair_torch16_has_sm70.txt"), "no-kernel-image")
    assert "has code for Tesla V100-PCIE-32GB (sm_70)" in f.summary and "sm_70" in f.facts["arch_list"]
    # open-mmlab/mmdetection#7742: the flags line is cut mid-list, so torch's coverage is not claimed
    f = one(diagnose("mmdetection-7742_mmcv_env_8x_a5000_torch111_cu115.txt"), "no-kernel-image")
    assert f.facts["assumed"]
    cut = diagnose("mmdetection-7742_mmcv_env_8x_a5000_torch111_cu115.txt")
    assert "arch-unsupported" not in {x.id for x in cut.findings}


def test_torch_not_compiled_with_cuda_is_no_cpu_wheel_on_intel_or_mac():
    # chflame163/ComfyUI_CatVTON_Wrapper#24: ComfyUI on "Device: xpu"; Comfy-Org/ComfyUI#5242: /Users/ paths
    for name in ("catvton-24_comfyui_intel_xpu_node_hardcodes_cuda_healthy.txt",
                 "comfyui-5242_macos_xlabs_torch_not_compiled_healthy.txt"):  # fmt: skip
        assert "cpu-only-wheel" not in {f.id for f in diagnose(name).findings}
    # Comfy-Org/Comfy-Desktop#979: the same line on Windows with an RTX 5060 Ti named only in prose
    f = one(diagnose("comfy-desktop-979_rtx5060ti_startup_torch_not_compiled.txt"), "cpu-only-wheel")
    assert f.severity is Severity.WARNING and f.facts["assumed"]


def test_a_cpu_build_in_a_banner_next_to_a_refused_cuda_device():
    # ogkalu2/comic-translate#17: "torch-2.1.0+cpu" and Ultralytics' "Invalid CUDA 'device=0' requested"
    f = one(diagnose("comic-translate-17_ultralytics_torch_cpu_3060ti_russian.txt"), "cpu-only-wheel")
    assert f.facts["version"] == "2.1.0+cpu" and f.facts["error_lines"]
    # a bare dump with a CPU build and no sign a GPU was wanted stays without a verdict (test_rules_baseline)


def test_jax_newer_than_its_jaxlib_and_a_cuda_it_cannot_load():
    # google-deepmind/deepmind-research#420: "jaxlib.xla_extension' has no attribute 'GpuAllocatorConfig'"
    f = one(diagnose("deepmind-research-420_jax_gpuallocatorconfig_jaxlib_behind.txt"), "jax-plugin-mismatch")
    assert f.facts["attr"] == "GpuAllocatorConfig"
    # magenta/mt3#145: "CUDA backend failed to initialize: Unable to load CUDA." (no "Is it installed?")
    f = one(diagnose("mt3-145_jax_unable_to_load_cuda_colab.txt"), "cuda-libs-missing")
    assert f.subject == "jax"
    # KosinskiLab/AlphaPulldown#237: cuSOLVER 11002 vs 11401 are read as versions
    f = one(diagnose("alphapulldown-237_jax_cusolver_older_tf_dlopen.txt"), "cuda-libs-too-old")
    assert (f.facts["found"], f.facts["built"]) == ("11.0.2", "11.4.1")


def test_cuda_error_802_by_number_only():
    # huggingface/huggingface_hub#4128: "CUDA Error 802" in the title, a Mac's hf env in the body
    report = diagnose("hf-hub-4128_error802_title_local_mac_hf_env_padded.txt")
    assert one(report, "fabric-manager-missing").severity is Severity.ERROR
    assert not {"no-driver", "cpu-only-wheel"} & {f.id for f in report.findings}


# --------------------------------------------------------------------------- held-out round 2 (2026-12-08)


def test_a_gpu_that_fell_off_the_bus_is_hardware_not_software():
    # leptonai/gpud#604: "XID 79(GPU has fallen off the bus)" then NVML's ERROR_GPU_IS_LOST
    f = one(diagnose("gpud-604_xid79_gpu_is_lost.txt"), "gpu-fell-off-bus")
    assert f.severity is Severity.ERROR and "power" in f.fix and "does not help" in f.fix
    # NVIDIA/NVSentinel#155: the dmesg message wrapped over three "NVRM:" lines
    report = diagnose("nvsentinel-155_dmesg_nvrm_fallen_off_bus_570.txt")
    assert one(report, "gpu-fell-off-bus")
    assert not {"no-driver", "driver-too-old"} & {x.id for x in report.findings}


def test_wsl_cudnn_without_libcuda_points_at_the_wsl_library_directory():
    # facebookresearch/nougat#115: "Could not load library libcudnn_cnn_infer.so.8. Error: libcuda.so" (WSL2)
    f = one(diagnose("nougat-115_wsl2_libcudnn_cnn_infer_libcuda_so.txt"), "wsl-libcuda-path")
    assert "/usr/lib/wsl/lib" in " ".join(f.commands)
    # the same line with no sign of WSL is not blamed on WSL
    text = "Could not load library libcudnn_cnn_infer.so.8. Error: libcuda.so: cannot open shared object file"
    assert "wsl-libcuda-path" not in {x.id for x in rejudge(load(text, "log")).findings}


def test_the_unformatted_too_old_warning_and_an_old_gpu_in_nvidia_smi():
    # neuralhydrology/neuralhydrology#43: "Found GPU%d %s ..." unformatted, two Tesla K20m in nvidia-smi
    f = one(diagnose("neuralhydrology-43_k20m_unformatted_too_old_warning_smi450.txt"), "gpu-too-old")
    assert f.severity is Severity.ERROR and f.facts["gpu"] == "Tesla K20m"


def test_no_kernel_image_names_the_gpu_nvidia_smi_shows():
    # pytorch/pytorch#31007: libtorch on a GTX 780 (3.5), title "no kernel image is available..."
    f = one(diagnose("pytorch-31007_libtorch_gtx780_tab_indented_smi_no_kernel_image.txt"), "no-kernel-image")
    assert "GeForce GTX 780 (compute capability 3.5)" in f.summary and "1.2.0" in f.fix
    # pytorch/pytorch.github.io#72: CUDA 8's wording, "cuda runtime error (8) : invalid device function"
    assert one(diagnose("pytorch-github-io-72_gt630m_invalid_device_function_error8.txt"), "no-kernel-image")


def test_an_old_bitsandbytes_on_windows_is_no_driver_problem():
    # bitsandbytes-foundation/bitsandbytes#1568: "libcuda.so not found! Do you have a CUDA driver installed?"
    report = diagnose("bitsandbytes-1568_windows_old_bnb_libcuda_not_found_healthy.txt")
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    assert report.snapshot.system is not None and report.snapshot.system.os == "Windows"


# --------------------------------------------------------------------------- held-out round 3


def test_xla_kernel_version_against_dso_version_is_a_driver_library_mismatch():
    # jax-ml/jax#11477: "kernel version 515.48.7 does not match DSO version 510.73.5" after an upgrade
    report = diagnose("jax-11477_kernel_version_does_not_match_dso_version.txt")
    f = one(report, "driver-library-mismatch")
    assert "515.48.7" in f.summary and "sudo reboot" in f.commands
    assert "driver-too-old" not in {x.id for x in report.findings}


def test_the_container_hook_names_the_host_state_it_failed_on():
    # NVIDIA/nvidia-container-toolkit#260: "nvidia-container-cli: initialization error: nvml error: driver
    # not loaded" -- a host without a loaded module, not a toolkit problem
    report = diagnose("nvidia-container-toolkit-260_cli_nvml_driver_not_loaded.txt")
    assert one(report, "no-driver").summary.endswith("kernel module is not loaded")
    assert "container-toolkit-missing" not in {x.id for x in report.findings}
    # NVIDIA/nvidia-docker#636: "load library failed: libcuda.so.1", and dmesg shows nouveau on the GPU
    f = one(diagnose("nvidia-docker-636_cli_libcuda_so1_nouveau_dmesg.txt"), "container-no-host-driver")
    assert "nouveau" in f.fix and any("blacklist" in c for c in f.commands)
    # the same hook error without a kernel log says nothing about nouveau
    text = "nvidia-container-cli: initialization error: load library failed: libcuda.so.1: cannot open"
    f = one(rejudge(load(text, "log")), "container-no-host-driver")
    assert "nouveau" not in f.fix


# --------------------------------------------------------------------------- held-out round 4


def test_a_gpu_in_compute_mode_prohibited_runs_no_cuda(healthy, judge):
    # ollama/ollama#8980: a vSphere vGPU "NVIDIA RTXA6000-48A" whose nvidia-smi row ends in "Prohibited"
    f = one(
        diagnose("ollama-8980_windows2022_vgpu_rtxa6000_48a_prohibited_smi.txt"), "gpu-compute-prohibited"
    )
    assert "A-series" in f.fix and f.commands == []
    # on bare metal the mode is reset with nvidia-smi; Default and the exclusive modes run CUDA
    gpu = healthy.nvidia.gpus[0]
    assert "gpu-compute-prohibited" not in judge(healthy).ids
    gpu.compute_mode = "Prohibited"
    f = next(x for x in judge(healthy).findings if x.id == "gpu-compute-prohibited")
    assert f.commands == [f"sudo nvidia-smi -i {gpu.index} -c DEFAULT"]
    gpu.compute_mode = "Exclusive_Process"
    assert "gpu-compute-prohibited" not in judge(healthy).ids


def test_tensorflow_cudart_stub_names_the_runtime_not_the_driver():
    # tensorflow/tensorflow#66750: TF 2.13.1 with only CUDA 12.4 installed
    report = diagnose("tensorflow-66750_tf2131_cuda124_rtx4090_template_cudart_stub.txt")
    f = one(report, "cuda-libs-missing")
    assert "libcudart" in f.summary
    assert not {"no-driver", "driver-too-old"} & {x.id for x in report.findings}
    # tensorflow/tensorflow#70960: TF 2.15.1 (CUDA 12.2 by the tables) under WSL on a CUDA 11.4 driver
    f = one(diagnose("tensorflow-70960_wsl_tf2151_template_smi_47506_cuda114.txt"), "driver-too-old")
    assert "12.2" in f.summary and "Windows" in f.fix
    assert not any("apt-get" in c for c in f.commands)  # never a Linux driver inside WSL


def test_tensorflow_missing_libcuda_is_a_missing_driver_not_missing_cuda_libraries():
    # tensorflow/tensorflow#53646: "Could not load dynamic library 'libcuda.so.1'" beside nvcc 11.2
    report = diagnose("tensorflow-53646_tf27_gtx1650_libcuda_so1_missing_cuinit_303.txt")
    assert one(report, "no-driver")
    assert "cuda-libs-missing" not in {x.id for x in report.findings}


def test_rocm_errors_get_no_nvidia_verdict():
    from envcheck.reply import to_reply

    # ROCm/ROCm#1159: "cuda runtime error (100) : hipErrorNoDevice" is HIP's, not CUDA's error 100
    report = diagnose("rocm-1159_rocm35_container_hiperrornodevice_error100_device67b0.txt")
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    assert "cuda-no-device" not in {ln.kind for ln in report.snapshot.paste.lines}  # type: ignore[union-attr]
    # pytorch/pytorch#73534: hipErrorNoBinaryForGpu in prose is read, and the reply says why nothing is judged
    report = diagnose("pytorch-73534_rocm_gfx902_hiperrornobinaryforgpu_prose.txt")
    assert "ROCm (AMD)" in to_reply(report) and not report.findings


def test_a_jetson_with_a_cpu_torch_gets_the_jetson_build():
    # huggingface/lerobot#2363: "Platform: Linux-5.15.148-tegra-aarch64-...", torch 2.7.1+cpu
    report = diagnose("lerobot-2363_orin_tegra_torch271_cpu_lerobot_env.txt")
    f = one(report, "cpu-only-wheel")
    assert f.severity is Severity.ERROR and "Jetson" in f.fix
    assert not any("download.pytorch.org" in c for c in f.commands)
    assert report.snapshot.system is not None and report.snapshot.system.kernel == "5.15.148-tegra"


def test_a_cuda_shim_reporting_int_max_is_no_old_driver_and_windows_gets_windows_commands():
    # vosen/ZLUDA#50: "too old (found version 2147483647)", then "CUDA unknown error" (nvcuda.dll swapped)
    report = diagnose("zluda-50_found_version_2147483647_qq_autoreply.txt")
    assert "driver-too-old" not in {x.id for x in report.findings}
    f = one(report, "cuda-init-failed")
    assert "nvcuda.dll" in f.fix and not any("rmmod" in c for c in f.commands)


def test_ollama_inference_compute_lines_name_the_gpus():
    s = diagnose("ollama-8066_inference_compute_log_lines_m40_healthy.txt").snapshot
    assert s.nvidia is not None and s.nvidia.cuda_driver_version == 12020
    assert [(g.name, g.compute_capability) for g in s.nvidia.gpus or []][:2] == [
        ("NVIDIA GeForce RTX 3090", "8.6"),
        ("Tesla T4", "7.5"),
    ]


def test_a_jax_probe_of_a_backend_the_machine_lacks_is_not_a_plugin_mismatch():
    # jax-ml/jax#25315: "Unable to initialize backend 'rocm': module 'jaxlib.xla_extension' has no attribute
    # 'GpuAllocatorConfig'" on an RTX 3090 whose jax, jaxlib and CUDA plugin are all 0.4.36
    report = diagnose("jax-25315_print_env_info_pip_freeze_rtx3090_platforms_gpu_rocm_healthy.txt")
    assert "jax-plugin-mismatch" not in {f.id for f in report.findings}
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
    # the same attribute error naming the CUDA backend is still a mismatch
    line = (
        "RuntimeError: Unable to initialize backend 'cuda': module 'jaxlib.xla_extension' has no attribute "
        "'GpuAllocatorConfig'"
    )
    assert "jax-plugin-mismatch" in {f.id for f in rejudge(load(line, "paste")).findings}


def test_jaxs_cpu_fallback_line_after_its_cuda_plugin_failed_is_not_a_cpu_build():
    # jax-ml/jax#30050: jax_plugins.xla_cuda12.initialize() fails ("Unable to load cuSPARSE"), then JAX says
    # "a CUDA-enabled jaxlib is not installed": the plugin is there, its libraries are the fault
    report = diagnose("jax-30050_jax062_cusparse_ld_library_path_print_env_info.txt")
    ids = {f.id for f in report.findings}
    assert "cuda-libs-missing" in ids and "cpu-only-wheel" not in ids
    # the fallback line alone still says a CPU jaxlib
    line = (
        "WARNING:2025-07-08 12:39:34,994 jax._src.xla_bridge:794] An NVIDIA GPU may be present on this "
        "machine, but a CUDA-enabled jaxlib is not installed. Falling back to cpu."
    )
    assert "cpu-only-wheel" in {f.id for f in rejudge(load(line, "paste")).findings}
