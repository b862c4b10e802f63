"""The refresh reads torch 1.x and TensorFlow 1.x/2.1 wheels, whose facts live in other files than
today's (``caffe2/core/macros.h``, bazel's ``cuda_config.h``, a ``build_info.py`` without the
CUDA lists). The members are recorded from the real wheels (tests/fixtures/knowledge/README.md)."""

from __future__ import annotations

from envcheck.knowledge.refresh import derive
from envcheck.knowledge.refresh.index import IndexFile
from envcheck.knowledge.refresh.wheel import Metadata, parse_metadata
from tests.knowledge._index import recorded


class RecordedWheel:
    """A WheelReader stand-in holding a few members of one recorded wheel."""

    def __init__(self, members: dict[str, bytes], *, gencode: list[str] | None = None) -> None:
        self.members = {k: v.decode() for k, v in members.items()}
        self.gencode = gencode

    def metadata(self, f: IndexFile) -> Metadata:
        return parse_metadata(self.members.get("METADATA", ""))

    def text_member(self, f: IndexFile, path: str) -> str | None:
        return self.members.get(path)

    def text_member_ending(self, f: IndexFile, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
        for name, text in self.members.items():
            if name.endswith(suffixes):
                return name, text
        return None

    def arch_flags(self, f: IndexFile, libraries: tuple[str, ...]) -> None:
        return None  # torch before 1.6 keeps no arch-flags string

    def gencode_flags(self, f: IndexFile, libraries: tuple[str, ...]) -> tuple[list[str], str] | None:
        return (self.gencode, libraries[-1]) if self.gencode else None


def wheel(name: str) -> IndexFile:
    return IndexFile(filename=name, url=f"http://127.0.0.1/{name}", sha256="0" * 64)


def test_tensorflow_gpu_1_12_facts_come_from_bazels_cuda_config() -> None:
    reader = RecordedWheel(
        {
            "tensorflow_gpu-1.12.3.data/purelib/tensorflow/include/external/local_config_cuda/cuda/cuda/"
            "cuda_config.h": recorded("tensorflow_gpu-1.12.3.cuda_config_h")
        }
    )
    facts = derive.tf_facts(reader, wheel("tensorflow_gpu-1.12.3-cp36-cp36m-manylinux1_x86_64.whl"))  # type: ignore[arg-type]
    assert facts is not None
    assert (facts.cuda, facts.cudnn) == ("9.0", "7")
    # 1.12.3 was rebuilt for sm_37 only (each capability as SASS and PTX)
    assert facts.archs == ("sm_37", "compute_37")


def test_tensorflow_1_12_0_lists_every_capability_it_built() -> None:
    reader = RecordedWheel(
        {
            "tensorflow/include/external/local_config_cuda/cuda/cuda/cuda_config.h": recorded(
                "tensorflow_gpu-1.12.0.cuda_config_h"
            )
        }
    )
    facts = derive.tf_facts(reader, wheel("tensorflow_gpu-1.12.0-cp36-cp36m-manylinux1_x86_64.whl"))  # type: ignore[arg-type]
    assert facts is not None and facts.cuda == "9.0"
    assert "sm_70" in facts.archs and "compute_35" in facts.archs


def test_tensorflow_2_1_reads_cuda_config_when_build_info_has_no_lists() -> None:
    reader = RecordedWheel(
        {
            "tensorflow_core/python/platform/build_info.py": recorded("tensorflow-2.1.4.build_info_py"),
            "tensorflow_core/include/external/local_config_cuda/cuda/cuda/cuda_config.h": recorded(
                "tensorflow-2.1.4.cuda_config_h"
            ),
        }
    )
    facts = derive.tf_facts(reader, wheel("tensorflow-2.1.4-cp37-cp37m-manylinux2010_x86_64.whl"))  # type: ignore[arg-type]
    assert facts is not None
    assert (facts.cuda, facts.cudnn) == ("10.1", "7")
    assert facts.archs[:6] == ("sm_35", "sm_37", "sm_52", "sm_60", "sm_61", "sm_70")
    assert facts.read[0].endswith("cuda_config.h")


def test_torch_1_8_cudnn_from_caffe2_macros() -> None:
    reader = RecordedWheel(
        {
            "METADATA": recorded("torch-1.8.1.METADATA"),
            "torch/version.py": recorded("torch-1.8.1.version_py"),
            "torch/include/caffe2/core/macros.h": recorded("torch-1.8.1.macros_h"),
        },
        gencode=["sm_37", "sm_50", "sm_60", "sm_70"],
    )
    log = derive.Log()
    facts = derive.torch_facts(reader, None, wheel("torch-1.8.1-cp39-cp39-manylinux1_x86_64.whl"), log)  # type: ignore[arg-type]
    assert facts is not None, log.problems
    assert (facts.cuda, facts.cudnn) == ("10.2", "7.6.5")
    assert facts.archs == ["sm_37", "sm_50", "sm_60", "sm_70"]
    assert any("macros.h" in r for r in facts.read)


def test_torch_1_4_without_macros_leaves_cudnn_unknown() -> None:
    reader = RecordedWheel(
        {
            "METADATA": recorded("torch-1.4.0.METADATA"),
            "torch/version.py": recorded("torch-1.4.0.version_py"),
        },
        gencode=["sm_37", "sm_50", "compute_37"],
    )
    log = derive.Log()
    facts = derive.torch_facts(reader, None, wheel("torch-1.4.0-cp38-cp38-manylinux1_x86_64.whl"), log)  # type: ignore[arg-type]
    assert facts is not None
    assert (facts.cuda, facts.cudnn) == ("10.1", "")  # unknown, never guessed
    assert any("-gencode" in r for r in facts.read)


def test_a_cpu_torch_wheel_gives_no_row_and_says_why() -> None:
    version_py = recorded("torch-1.4.0.version_py").replace(b"cuda = '10.1'", b"cuda = None")
    reader = RecordedWheel({"METADATA": recorded("torch-1.4.0.METADATA"), "torch/version.py": version_py})
    log = derive.Log()
    assert derive.torch_facts(reader, None, wheel("torch-1.4.0-cp38-none-linux_x86_64.whl"), log) is None  # type: ignore[arg-type]
    assert "CPU build" in log.problems[0]
