"""The dump formats the first held-out round found unread (OpenMMLab's and detectron2's collect_env,
``torch.__config__.show()``, Lightning's env, Python sessions, app banners, hand-typed version lists),
each on its real paste (tests/fixtures/ingest, sources in corpus.toml), plus the wrappings and
false facts that round exposed."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.errors import UsageError
from envcheck.ingest import load
from envcheck.ingest._text import normalise
from envcheck.models import Snapshot

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def read(name: str) -> Snapshot:
    return load((ROOT / name).read_bytes(), name).snapshot


def torch_of(s: Snapshot):
    return next(f for f in (s.frameworks.frameworks if s.frameworks else []) if f.name == "torch")


def test_openmmlab_collect_env_and_its_torch_config_block():
    s = read("mmdetection-4825_mmcv_env_v100_pair_torch16_has_sm70.txt")
    assert s.paste is not None and {"mmcv-env", "torch-config"} <= set(s.paste.kinds)
    assert [(g.index, g.name) for g in s.nvidia.gpus or []] == [
        (0, "Tesla V100-PCIE-32GB"),
        (1, "Tesla V100-PCIE-32GB"),
    ]
    torch = torch_of(s)
    assert (torch.version, torch.build, torch.cuda_build, torch.cudnn_build) == (
        "1.6.0",
        "cuda",
        "10.0",
        "7.6.4",
    )
    assert torch.arch_list == ["sm_35", "sm_52", "sm_60", "sm_61", "sm_70", "sm_75", "compute_75"]
    assert s.cuda is not None and s.cuda.nvcc_version == "10.0.130"
    assert s.system is not None and s.system.os == "Linux"


def test_a_flags_line_cut_by_the_end_of_the_paste_is_not_the_whole_arch_list():
    torch = torch_of(read("mmdetection-7742_mmcv_env_8x_a5000_torch111_cu115.txt"))
    assert torch.cuda_build == "11.5" and torch.arch_list is None


def test_detectron2_collect_env_table_on_a_mac():
    s = read("detectron2-4575_detectron2_collect_env_macos_mps_healthy.txt")
    assert s.paste is not None and "detectron2-env" in s.paste.kinds
    assert s.system is not None and s.system.os == "Darwin"
    torch = torch_of(s)
    assert (
        torch.version == "1.13.0.dev20220927" and torch.deep is not None and torch.deep.gpu_available is False
    )


def test_lightning_env_cut_after_its_cuda_section():
    s = read("lightning-14634_lightning_env_m1_mps_cut_healthy.txt")
    assert s.paste is not None and s.paste.kinds == ["lightning-env"]
    torch = torch_of(s)
    assert torch.build is None  # "version: None" on an unknown OS: a Mac has no CUDA build either


def test_python_sessions_are_read_through_their_prompts():
    s = read("tensorflow-62080_tf214_native_windows10_gtx960m_not_built_with_cuda.txt")
    tf = next(f for f in s.frameworks.frameworks if f.name == "tensorflow")  # type: ignore[union-attr]
    assert (tf.version, tf.build) == ("2.14.0", "cpu")  # is_built_with_cuda() False
    assert tf.deep is not None and tf.deep.gpu_available is False  # list_physical_devices('GPU') -> []
    doc = normalise("> >>> torch.__version__\n> '2.1.0+cu121'\n>>> print(torch.cuda.is_available())\nFalse\n")
    assert doc.lines[0].text == ">>> torch.__version__"  # a quoted prompt keeps its ">>>"
    torch = torch_of(load(doc.text, "repl").snapshot)
    assert (torch.version, torch.cuda_build, torch.deep.gpu_available) == ("2.1.0+cu121", "12.1", False)  # type: ignore[union-attr]


def test_app_banners_name_the_torch_build():
    torch = torch_of(read("comic-translate-17_ultralytics_torch_cpu_3060ti_russian.txt"))
    assert (torch.version, torch.build) == ("2.1.0+cpu", "cpu")
    s = read("catvton-24_comfyui_intel_xpu_node_hardcodes_cuda_healthy.txt")  # behind Python logging prefixes
    assert torch_of(s).build == "xpu" and not s.paste.conflicts  # type: ignore[union-attr]
    yolo = load(
        "YOLOv5 🚀 v7.0-72-g064365d Python-3.10.6 torch-1.13.1+cu116 CUDA:0 (Tesla T4, 15110MiB)\n", "y"
    )
    assert yolo.snapshot.nvidia.gpus[0].name == "Tesla T4"  # type: ignore[union-attr,index]
    assert torch_of(yolo.snapshot).cuda_build == "11.6"


def test_hand_typed_versions_and_a_tf_template_os_heading():
    s = read("pytorch-177819_macos26_mps_bullets_healthy.txt")
    assert torch_of(s).version == "2.10.0" and s.system is not None and s.system.os == "Darwin"
    s = read("tensorflow-85006_tf218_native_windows11_rtx4080_template.txt")
    assert s.system is not None and s.system.os == "Windows"
    assert s.nvidia is not None and s.nvidia.gpus and s.nvidia.gpus[0].name == "4080 RTX"
    # a dump's own "OS:"/"Python version:" lines are not read twice as a hand-typed list
    assert read("vllm-12378_rhel84_a100_cu121_prompt_healthy.txt").paste.kinds == ["collect_env"]  # type: ignore[union-attr]


def test_advice_in_an_error_message_is_not_a_setting():
    text = (
        "RuntimeError: CUDA error: no kernel image is available for execution on the device\n"
        "CUDA kernel errors might be asynchronously reported at some other API call,so the stacktrace below "
        "might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1.\n"
    )
    s = load(text, "log").snapshot
    assert "CUDA_LAUNCH_BLOCKING" not in (s.system.env if s.system else {})
    run = "$ CUDA_LAUNCH_BLOCKING=1 python train.py\nRuntimeError: CUDA error: no kernel image is available "
    s = load(run + "for execution on the device\n", "log").snapshot
    assert s.system is not None and s.system.env["CUDA_LAUNCH_BLOCKING"] == "1"


def test_cuda_errors_named_by_number():
    for text, kind in [
        ("CUDA Error 802 on all H200 jobs", "cuda-system-not-ready"),
        (
            "RuntimeError: cuda runtime error (35) : CUDA driver version is insufficient",
            "cuda-insufficient-driver",
        ),
        ("CUDA error at bandwidthTest.cu:256 code=802(cudaErrorSystemNotReady)", "cuda-system-not-ready"),
        ("cudaGetDeviceCount failed with error 100", "cuda-no-device"),
    ]:
        lines = load(text, "t").snapshot.paste.lines  # type: ignore[union-attr]
        assert kind in {ln.kind for ln in lines}, text
    with pytest.raises(UsageError):  # a bare number is no CUDA error
        load("curl: (35) error 35 while fetching the page, then error 802 again", "t")


def test_bitsandbytes_report_states_torch_cuda_and_the_newest_gpu():
    text = (
        "===================================BUG REPORT===================================\n"
        "CUDA SETUP: PyTorch settings found: CUDA_VERSION=118, Highest Compute Capability: 8.6.\n"
    )
    s = load(text, "bnb").snapshot
    assert torch_of(s).cuda_build == "11.8" and s.nvidia.gpus[0].compute_capability == "8.6"  # type: ignore[union-attr,index]


def test_conda_export_lines():
    s = load(
        "name: env\ndependencies:\n  - pytorch=1.9.0=py3.8_cpu_0\n  - torchvision=0.10.0=py38_cpu\n", "e"
    ).snapshot
    assert (torch_of(s).version, torch_of(s).build) == ("1.9.0", "cpu")


def test_wsl_named_in_words_is_taken_as_the_platform():
    s = read("textgen-486_windows11_wsl_libcudnn_libcuda_so_logs.txt")
    assert s.system is not None and s.system.container is not None and s.system.container.wsl


def test_the_reply_asks_only_for_what_its_verdict_hangs_on():
    from envcheck.reply import to_reply
    from envcheck.report import rejudge

    # NVIDIA/nvidia-docker#1442: the image needs CUDA 11; the verdict stands, only the driver is assumed
    reply = to_reply(
        rejudge(load((ROOT / "nvidia-docker-1442_requirement_cuda110_old_driver.txt").read_bytes(), "r"))
    )
    assert "the NVIDIA driver version" in reply and "which framework and version" not in reply
    # a Mac is not asked for an NVIDIA driver or GPU
    reply = to_reply(
        rejudge(load((ROOT / "pytorch-177819_macos26_mps_bullets_healthy.txt").read_bytes(), "r"))
    )
    assert "nvidia-smi" not in reply and "CUDA or a CPU build" not in reply


def test_a_report_followed_by_prose_is_not_cut_and_one_at_the_end_is():
    assert not read("doctr-345_doctr_collect_env_no_gpu_healthy.txt").paste.truncated  # type: ignore[union-attr]
    assert read("vllm-19352_new_format_centos7_glibc217_cu124_cut_healthy.txt").paste.truncated  # type: ignore[union-attr]


def test_a_kernel_log_with_nouveau_on_a_gpu_says_nouveau_is_loaded():
    s = read("nvidia-docker-636_cli_libcuda_so1_nouveau_dmesg.txt")
    assert s.nvidia and s.nvidia.kernel_module and s.nvidia.kernel_module.nouveau_loaded
    assert "dmesg" in s.paste.kinds  # type: ignore[union-attr]
    # prose that names nouveau and a PCI address is no kernel log
    text = (
        b"nvidia-container-cli: initialization error: load library failed: libcuda.so.1\n"
        b"I blacklisted nouveau 0000:01:00.0: yesterday, no change"
    )
    s = load(text, "x").snapshot
    assert not (s.nvidia and s.nvidia.kernel_module and s.nvidia.kernel_module.nouveau_loaded)


def test_a_reply_asks_the_pci_bus_for_the_gpu_while_nvml_fails():
    from envcheck.reply import to_reply
    from envcheck.report import rejudge

    reply = to_reply(
        rejudge(
            load((ROOT / "nvidia-container-toolkit-260_cli_nvml_driver_not_loaded.txt").read_bytes(), "r")
        )
    )
    assert "lspci" in reply and "nvidia-smi -L" not in reply


def test_two_python_sessions_are_two_environments_and_the_first_is_kept():
    # NVIDIA-ISAAC-ROS/isaac_ros_common#29: PyPI's torch 1.12.0 (False), then NVIDIA's nv22.3 (True)
    s = read("isaac-ros-common-29_orin_container_pypi_torch1120_false_vs_nv_wheel.txt")
    torch = torch_of(s)
    assert torch.version == "1.12.0" and torch.deep is not None and torch.deep.gpu_available is False
    assert any("gpu_available" in c for c in s.paste.conflicts)  # type: ignore[union-attr]


def test_ollama_server_log_lines_of_both_eras():
    old = (
        'time=2024-12-12T07:11:11.731Z level=INFO source=types.go:123 msg="inference compute" id=GPU-1 '
        'library=cuda variant=v12 compute=8.6 driver=12.2 name="NVIDIA GeForce RTX 3090" total="23.7 GiB"'
    )
    new = (
        'time=2026-07-31T10:00:00.000+08:00 level=INFO source=types.go:60 msg="inference compute" id=GPU-2 '
        'library=CUDA compute=8.6 name=CUDA0 description="NVIDIA RTX A6000" libdirs=ollama,cuda_v12 '
        "driver=13.2"
    )
    rocm = 'msg="inference compute" id=0 library=rocm compute=gfx1100 driver=6.3 name=1002:744c'
    s = load("\n".join([old, new, rocm]).encode(), "log").snapshot
    assert s.nvidia is not None and s.nvidia.cuda_driver_version == 12020
    assert [g.name for g in s.nvidia.gpus or []] == ["NVIDIA GeForce RTX 3090", "NVIDIA RTX A6000"]
    assert s.nvidia.gpus and s.nvidia.gpus[0].memory_total_mib == round(23.7 * 1024)


def test_nvidia_smi_compute_mode_and_the_windows_driver_model_column():
    s = read("ollama-8980_windows2022_vgpu_rtxa6000_48a_prohibited_smi.txt")
    assert s.nvidia and s.nvidia.gpus and s.nvidia.gpus[0].compute_mode == "Prohibited"
    assert s.system is not None and s.system.os == "Windows"  # "TCC/WDDM" exists only on Windows
    s = read("ollama-12332_cuda13_build_v100_4090s_driver580_smi_healthy.txt")
    assert s.nvidia and s.nvidia.gpus and s.nvidia.gpus[0].compute_mode == "Default"
    assert s.system is None or s.system.os != "Windows"


def test_a_python_platform_string_gives_kernel_arch_and_glibc():
    s = read("lerobot-2363_orin_tegra_torch271_cpu_lerobot_env.txt")
    assert s.system is not None
    assert (s.system.kernel, s.system.arch, s.system.glibc) == ("5.15.148-tegra", "aarch64", "2.35")


def test_condas_plan_is_a_package_list_and_a_cpu_pytorch_beside_cudatoolkit_says_so():
    # conda/conda#11001: "cudatoolkit=10.1" asked, "pytorch/win-64::pytorch-1.10.0-py3.6_cpu_0" planned
    s = read("conda-11001_windows_conda_plan_cpuonly_pytorch110.txt")
    torch = torch_of(s)
    assert (torch.version, torch.build) == ("1.10.0", "cpu")
    assert s.system is not None and s.system.os == "Windows"  # the win-64 subdir
    [line] = [ln for ln in s.paste.lines if ln.kind == "conda-cpu-build"]  # type: ignore[union-attr]
    assert "py3.6_cpu_0" in line.text and line.values["cuda_package"] == "cudatoolkit"
    # a CPU pytorch alone is what was asked for: no line
    plan = (
        b"The following NEW packages will be INSTALLED:\n\n"
        b"  cpuonly            pytorch/noarch::cpuonly-2.0-0\n"
        b"  pytorch            pytorch/linux-64::pytorch-2.1.0-py3.10_cpu_0\n"
    )
    s = load(plan, "plan").snapshot
    assert torch_of(s).build == "cpu" and not s.paste.lines  # type: ignore[union-attr]


def test_nvidia_container_cli_info_states_driver_and_gpus():
    s = read("nvidia-docker-895_cli_info_nvrm384_920m_uname.txt")
    assert s.nvidia is not None
    assert (s.nvidia.driver_version, s.nvidia.cuda_driver_version) == ("384.130", 9000)
    assert [(g.name, g.compute_capability) for g in s.nvidia.gpus or []] == [("GeForce 920M", "3.5")]


@pytest.mark.parametrize(
    "text",
    [
        # ROCm/hip#3465: a rocminfo excerpt under an is_available() title
        '# [Issue]: python -c "import torch;print(torch.cuda.is_available())" returns False\n\nGPU:\n'
        "  Name:                    gfx1100\n  Marketing Name:          Radeon RX 7900 XTX\n",
        # pytorch/pytorch#99983: a ROCm wheel's collect_env crashing, in prose
        "I run a simple line torch.cuda.is_available() which always returns false.\n"
        'File "/home/ubuntu/.local/lib/python3.10/site-packages/torch/utils/collect_env.py", line 437, in '
        "get_env_info\n"
        "    hip_runtime_version = [s.rsplit(None, 1)[-1] for s in cfg if 'HIP Runtime' in s][0]\n"
        "IndexError: list index out of range\n",
    ],
)
def test_amd_excerpts_without_a_fact_are_refused_in_one_line(text: str):
    with pytest.raises(UsageError) as exc:
        load(text.encode(), "paste")
    assert "\n" not in exc.value.message


def test_a_grepped_conda_list_after_a_starship_prompt_is_a_conda_list():
    # meta-pytorch/data#315: "❯ conda list | grep pytorch" (no header), pytorch 1.11.0 py3.8_cpu_0 with
    # cpuonly while the environment.yml above asks for cudatoolkit=11.3
    s = read("torchdata-315_conda_list_grep_pytorch_cpuonly_vs_cuda_env_yml.txt")
    assert s.paste is not None and "conda-list" in s.paste.kinds
    assert (torch_of(s).version, torch_of(s).build) == ("1.11.0", "cpu")
    [line] = [ln for ln in s.paste.lines if ln.kind == "conda-cpu-build"]
    assert "py3.8_cpu_0" in line.text and line.values["cuda_package"] == "cudatoolkit"
    assert [c for _, c in normalise("❯ conda list | grep torch\n").commands] == ["conda list | grep torch"]


def test_conda_rows_need_their_command_right_above():
    # rows of three or four columns are conda's only under `conda list`: prose between breaks the tie
    row = "pytorch  2.1.0  py3.10_cuda12.1_cudnn8.9.2_0  pytorch\n"
    text = "$ conda list | grep torch\n" + row
    s = load(text.encode(), "paste").snapshot
    assert (torch_of(s).version, torch_of(s).build, torch_of(s).cuda_build) == ("2.1.0", "cuda", "12.1")
    text = "$ conda list | grep torch\nsome prose here\n" + row
    with pytest.raises(UsageError):
        load(text.encode(), "paste")
