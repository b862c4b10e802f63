"""Child program: PyTorch smoke tests on the CPU and every CUDA/ROCm GPU.

The torch adapter of envcheck smoke: run as ``main()`` inside a child interpreter only. Torch
is imported through ``importlib`` so that nothing here depends on its type stubs.
"""

from __future__ import annotations

from typing import Any

from envcheck.smoke import _harness as h


def _arithmetic(torch: Any, dev: str) -> str:
    a = torch.tensor(4.0, device=dev)
    b = torch.tensor(3.0, device=dev)
    c = a + b
    h.check(c.device.type == torch.device(dev).type, f"result landed on {c.device}, not {dev}")
    got = c.item()
    h.check(got == 7.0, f"4 + 3 = {got}, expected 7")
    return f"4 + 3 = {got:g} on {c.device}"


def _autograd(torch: Any, dev: str) -> str:
    x = torch.tensor(3.0, device=dev, requires_grad=True)
    (grad,) = torch.autograd.grad(x * x, x)
    got = grad.item()
    h.check(got == 6.0, f"d(x^2)/dx at 3 = {got}, expected 6")
    return f"d(x^2)/dx at 3 = {got:g}"


def _train(torch: Any, dev: str, d: dict[str, Any]) -> str:
    x, y = torch.from_numpy(d["x"]).to(dev), torch.from_numpy(d["y"]).to(dev)
    w1 = torch.from_numpy(d["w1"]).to(dev).requires_grad_()
    w2 = torch.from_numpy(d["w2"]).to(dev).requires_grad_()
    losses = []
    for _ in range(h.STEPS):
        loss = (x.mm(w1).clamp(min=0).mm(w2) - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= h.LEARNING_RATE * w1.grad
            w2 -= h.LEARNING_RATE * w2.grad
            w1.grad = None
            w2.grad = None
    return h.check_loss_fell(losses)


def _matmul(torch: Any, dev: str, d: dict[str, Any], dtype: Any) -> Any:
    a = torch.from_numpy(d["a"]).to(dev, dtype)
    b = torch.from_numpy(d["b"]).to(dev, dtype)
    return (a @ b).float().cpu().numpy()


def _dtype(torch: Any, dev: str, d: dict[str, Any], name: str) -> str:
    return h.check_dtype(name, d, lambda dtype: _matmul(torch, dev, d, dtype), torch.float32, torch)


def _tf32(torch: Any, dev: str, d: dict[str, Any]) -> str:
    if not dev.startswith("cuda"):
        raise h.Skip(h.NO_TF32)
    major, minor = torch.cuda.get_device_capability(dev)
    if major < 8:
        raise h.Skip(f"compute capability {major}.{minor} has no TF32 (needs 8.0+)")
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    try:
        matmul.allow_tf32 = False
        ref = _matmul(torch, dev, d, torch.float32)
        matmul.allow_tf32 = True
        got = _matmul(torch, dev, d, torch.float32)
    finally:
        matmul.allow_tf32 = saved
    return h.check_close("tf32", got, ref)


def _conv(torch: Any, dev: str, d: dict[str, Any]) -> str:
    cudnn = torch.backends.cudnn
    h.check(bool(cudnn.is_available()), "cuDNN is not available to torch")
    img = torch.from_numpy(d["img"]).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    filt = torch.from_numpy(d["filt"]).permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    conv = torch.nn.functional.conv2d
    ref = conv(img, filt, padding=1).numpy()
    with cudnn.flags(enabled=True, allow_tf32=False):
        got = conv(img.to(dev), filt.to(dev), padding=1).cpu().numpy()
    return f"cuDNN {cudnn.version()}, " + h.check_close("float32", got, ref)


def _round_trip(torch: Any, dev: str) -> str:
    import numpy as np

    host = np.random.default_rng(1).standard_normal(h.ROUND_TRIP_ELEMENTS).astype(np.float32)
    back = torch.from_numpy(host).pin_memory().to(dev, non_blocking=True).cpu().numpy()
    h.check(bool(np.array_equal(host, back)), "data changed on the way to the device and back")
    return f"{host.nbytes >> 20} MiB bit-exact"


def _nccl(torch: Any, count: int) -> str:
    nccl = torch.cuda.nccl
    tensors = [torch.full((1024,), float(i + 1), device=f"cuda:{i}") for i in range(count)]
    h.check(bool(nccl.is_available(tensors)), "NCCL is not available for these tensors")
    nccl.all_reduce(tensors)
    expected = count * (count + 1) / 2
    for i, t in enumerate(tensors):
        got = t.cpu()
        h.check(bool((got == expected).all()), f"cuda:{i} holds {got[0].item()}, expected {expected:g}")
    return f"sum over {count} GPUs = {expected:g} on each (NCCL {'.'.join(map(str, nccl.version()))})"


def main() -> None:
    """Import torch, find its devices, run every test on each."""
    rec = h.Recorder("torch")
    torch = rec.import_framework("torch", lambda m: m.__version__)
    if torch is None:
        return
    devices: list[tuple[str, str, str]] = [("cpu", "cpu", "cpu")]
    gpus = 0
    try:
        if torch.cuda.is_available():
            gpus = torch.cuda.device_count()
            devices += [(f"gpu:{i}", f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(gpus)]
    except Exception as exc:  # a broken driver: the CPU still gets tested
        rec.add("gpu", "devices", "fail", error=h.last_line(exc))
    d = h.data()
    for label, dev, name in devices:

        def run(test: str, func: Any, label: str = label, name: str = name) -> None:
            rec.run(label, test, func, device_name=name)

        run("arithmetic", lambda dev=dev: _arithmetic(torch, dev))
        run("autograd", lambda dev=dev: _autograd(torch, dev))
        run("train-2layer", lambda dev=dev: _train(torch, dev, d))
        for dtype in h.DTYPES:
            run(f"dtype-{dtype}", lambda dev=dev, dtype=dtype: _dtype(torch, dev, d, dtype))
        run("dtype-tf32", lambda dev=dev: _tf32(torch, dev, d))
        if dev != "cpu":
            run("cudnn-conv", lambda dev=dev: _conv(torch, dev, d))
            run("round-trip", lambda dev=dev: _round_trip(torch, dev))
    if gpus >= 2:
        rec.run("gpu:all", "nccl-all-reduce", lambda: _nccl(torch, gpus))
