"""Verdicts from what a report's form *says* is installed ("CUDA/cuDNN version: 11.8/8.6" in
TensorFlow's issue template), checked against what the release was built with. The user typed the
claim, so every finding here is a warning that names the claim as assumed; a listing of the
libraries (tf_env_collect, a dlopen log) outranks it and is judged by the structured rules."""

from __future__ import annotations

from envcheck.knowledge import builds
from envcheck.knowledge._version import cudnn_tuple, vtuple
from envcheck.models import Finding, Severity, Snapshot
from envcheck.rules import _facts as F

__all__ = ["tf_stated_cuda_mismatch"]

#: the first TensorFlow whose plain ``tensorflow`` wheel is a CUDA build (before: tensorflow-gpu)
_TF_PLAIN_GPU = (2, 1)


def tf_stated_cuda_mismatch(s: Snapshot) -> Finding | None:
    """TensorFlow built for CUDA X on a machine whose report says CUDA Y is installed, where Y's
    libraries cannot be the ones TensorFlow loads: it silently runs on the CPU."""
    paste = s.paste
    tf = s.framework("tensorflow")
    if paste is None or not paste.stated_cuda or tf is None or not tf.version:
        return None
    if "tf-log" in paste.kinds or (tf.deep and tf.deep.gpu_available):
        return None  # TensorFlow is shown using the GPU: whatever the form says, its libraries loaded
    if (s.system and s.system.os == "Darwin") or F.build_kind(tf) not in (None, "cuda"):
        return None  # a CPU, ROCm or Mac build loads no CUDA
    release = builds.release_of("tensorflow", tf.version)
    rows = builds.builds("tensorflow", release) if release else []
    if not rows:
        return None
    row = rows[0]
    plain = F.build_kind(tf) is None and tf.distribution != "tensorflow-gpu"
    if plain and (vtuple(release) or ()) < _TF_PLAIN_GPU:
        return None  # plain ``tensorflow`` before 2.1 is the CPU package
    built = row.cuda_mm
    cudnn_built, cudnn_stated = cudnn_tuple(row.cudnn), cudnn_tuple(paste.stated_cudnn)
    # a bare "11" is too vague to contradict anything
    cuda_ok = len(vtuple(paste.stated_cuda) or ()) < 2 or F.cudart_serves(paste.stated_cuda, built)
    cudnn_ok = not (cudnn_built and cudnn_stated) or cudnn_stated[0] == cudnn_built[0]
    if cuda_ok and cudnn_ok:
        return None
    wheels = builds.wheel_cuda("tensorflow", tf.version) is not False
    exact = "exactly " if built[0] < 11 else ""
    want = f"CUDA {exact}{built[0]}.{built[1]}" + (f" and cuDNN {row.cudnn}" if row.cudnn else "")
    stated = f"CUDA {paste.stated_cuda}" + (f" / cuDNN {paste.stated_cudnn}" if paste.stated_cudnn else "")
    assumed = [f"the report's '{stated}' is the CUDA installed (typed by the user, not a library listing)"]
    if wheels:
        assumed.append("no nvidia-* CUDA wheels (tensorflow[and-cuda]) are installed beside it")
        fix = (
            f"TensorFlow {tf.version} loads {want}; {stated} cannot stand in. Install its and-cuda extra, "
            "which brings exactly those libraries as wheels, and keep the other toolkit off LD_LIBRARY_PATH."
        )
        commands = [f'pip install "tensorflow[and-cuda]=={tf.version}"']
    else:
        fix = (
            f"TensorFlow {tf.version} predates the and-cuda wheels (2.14) and dlopens {want} from the "
            f"system; {stated} cannot stand in. Install that toolkit beside the other one (on its library "
            "path), or move to a TensorFlow built for the CUDA you have (tested build configurations: "
            "tensorflow.org/install/source#gpu)."
        )
        commands = [f"sudo apt-get install -y cuda-toolkit-{built[0]}-{built[1]}"] if built >= (11, 0) else []
    return Finding(
        id="cuda-libs-missing",
        severity=Severity.WARNING,
        summary=f"TensorFlow {tf.version} is built for {want}, and the report says {stated} is installed: "
        "it finds no usable CUDA libraries and runs on the CPU",
        facts={
            "tensorflow": tf.version,
            "tensorflow_cuda": f"{built[0]}.{built[1]}",
            "tensorflow_cudnn": row.cudnn,
            "stated_cuda": paste.stated_cuda,
            "stated_cudnn": paste.stated_cudnn,
            "assumed": assumed,
        },
        fix=fix,
        commands=commands,
        subject="tensorflow",
    )
