"""Child program: JAX smoke tests on the CPU and every device of its default backend (GPU, TPU).

The jax adapter of envcheck smoke: run as ``main()`` inside a child interpreter only. The
parent sets XLA_PYTHON_CLIENT_PREALLOCATE=false so JAX does not reserve 75% of every GPU while
the other frameworks' children run on it.
"""

from __future__ import annotations

from typing import Any

from envcheck.smoke import _harness as h


def _arithmetic(jax: Any, dev: Any) -> str:
    import numpy as np

    c = jax.device_put(np.float32(4.0), dev) + jax.device_put(np.float32(3.0), dev)
    h.check(c.devices() == {dev}, f"result landed on {c.devices()}, not {dev}")
    got = float(c)
    h.check(got == 7.0, f"4 + 3 = {got}, expected 7")
    return f"4 + 3 = {got:g} on {dev}"


def _autograd(jax: Any, dev: Any) -> str:
    import numpy as np

    grad = jax.grad(lambda x: x * x)(jax.device_put(np.float32(3.0), dev))
    got = float(grad)
    h.check(got == 6.0, f"d(x^2)/dx at 3 = {got}, expected 6")
    return f"d(x^2)/dx at 3 = {got:g}"


def _train(jax: Any, dev: Any, d: dict[str, Any]) -> str:
    jnp = jax.numpy

    def loss_fn(params: tuple[Any, Any], x: Any, y: Any) -> Any:
        w1, w2 = params
        return jnp.sum(jnp.square(jnp.maximum(x @ w1, 0.0) @ w2 - y))

    @jax.jit
    def step(params: tuple[Any, Any], x: Any, y: Any) -> tuple[Any, tuple[Any, Any]]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return loss, tuple(p - h.LEARNING_RATE * g for p, g in zip(params, grads, strict=True))

    put = jax.device_put
    x, y = put(d["x"], dev), put(d["y"], dev)
    params = (put(d["w1"], dev), put(d["w2"], dev))
    losses = []
    with jax.default_matmul_precision("highest"):
        for _ in range(h.STEPS):
            loss, params = step(params, x, y)
            losses.append(float(loss))
    return h.check_loss_fell(losses)


def _matmul(jax: Any, dev: Any, d: dict[str, Any], dtype: Any, precision: str = "highest") -> Any:
    import numpy as np

    a = jax.device_put(d["a"], dev).astype(dtype)
    b = jax.device_put(d["b"], dev).astype(dtype)
    with jax.default_matmul_precision(precision):
        return np.asarray((a @ b).astype("float32"))


def _dtype(jax: Any, dev: Any, d: dict[str, Any], name: str) -> str:
    return h.check_dtype(name, d, lambda dtype: _matmul(jax, dev, d, dtype), "float32", jax.numpy)


def _tf32(jax: Any, dev: Any, d: dict[str, Any]) -> str:
    if dev.platform != "gpu":
        raise h.Skip(h.NO_TF32)
    cc = getattr(dev, "compute_capability", None)
    if cc is None or float(cc) < 8.0:
        raise h.Skip(f"compute capability {cc} has no TF32 (needs 8.0+)")
    ref = _matmul(jax, dev, d, "float32")
    got = _matmul(jax, dev, d, "float32", precision="tensorfloat32")
    return h.check_close("tf32", got, ref)


def _conv(jax: Any, dev: Any, cpu: Any, d: dict[str, Any]) -> str:
    import numpy as np

    def conv(device: Any) -> Any:
        img, filt = jax.device_put(d["img"], device), jax.device_put(d["filt"], device)
        with jax.default_matmul_precision("highest"):
            out = jax.lax.conv_general_dilated(
                img, filt, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        return np.asarray(out)

    return h.check_close("float32", conv(dev), conv(cpu))


def _round_trip(jax: Any, dev: Any) -> str:
    import numpy as np

    host = np.random.default_rng(1).standard_normal(h.ROUND_TRIP_ELEMENTS).astype(np.float32)
    on_dev = jax.device_put(host, dev)
    h.check(on_dev.devices() == {dev}, f"array landed on {on_dev.devices()}, not {dev}")
    h.check(bool(np.array_equal(host, np.asarray(on_dev))), "data changed on the way to the device and back")
    return f"{host.nbytes >> 20} MiB bit-exact"


def _nccl(jax: Any, gpus: list[Any]) -> str:
    import numpy as np

    n = len(gpus)
    values = np.arange(1, n + 1, dtype=np.float32)[:, None] * np.ones((n, 1024), np.float32)
    out = np.asarray(jax.pmap(lambda v: jax.lax.psum(v, "i"), axis_name="i", devices=gpus)(values))
    expected = n * (n + 1) / 2
    h.check(
        bool((out == expected).all()),
        f"all-reduce gave {sorted(set(out.ravel().tolist()))[:4]}, expected {expected:g}",
    )
    return f"sum over {n} GPUs = {expected:g} on each"


def main() -> None:
    """Import JAX, find its devices, run every test on each."""
    rec = h.Recorder("jax")
    jax = rec.import_framework("jax", lambda m: m.__version__)
    if jax is None:
        return
    cpu = jax.devices("cpu")[0]
    devices = [cpu]
    try:
        if jax.default_backend() != "cpu":
            devices += jax.devices()
    except Exception as exc:  # a broken plugin: the CPU still gets tested
        rec.add("accelerators", "devices", "fail", error=h.last_line(exc))
    d = h.data()
    counters: dict[str, int] = {}
    gpus = [dev for dev in devices if dev.platform == "gpu"]
    for dev in devices:
        kind = dev.platform
        label = "cpu" if dev is cpu else f"{kind}:{counters.setdefault(kind, 0)}"
        if dev is not cpu:
            counters[kind] += 1
        name = "cpu" if dev is cpu else getattr(dev, "device_kind", None)

        def run(test: str, func: Any, label: str = label, name: str | None = name) -> None:
            rec.run(label, test, func, device_name=name)

        run("arithmetic", lambda dev=dev: _arithmetic(jax, dev))
        run("autograd", lambda dev=dev: _autograd(jax, dev))
        run("train-2layer", lambda dev=dev: _train(jax, dev, d))
        for dtype in h.DTYPES:
            run(f"dtype-{dtype}", lambda dev=dev, dtype=dtype: _dtype(jax, dev, d, dtype))
        run("dtype-tf32", lambda dev=dev: _tf32(jax, dev, d))
        if dev.platform == "gpu":
            run("cudnn-conv", lambda dev=dev: _conv(jax, dev, cpu, d))
        if dev is not cpu:
            run("round-trip", lambda dev=dev: _round_trip(jax, dev))
    if len(gpus) >= 2:
        rec.run("gpu:all", "nccl-all-reduce", lambda: _nccl(jax, gpus))
