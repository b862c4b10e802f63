"""Child program: TensorFlow (and tf.keras ``fit``) smoke tests on the CPU, every GPU and TPU.

The tensorflow adapter of envcheck smoke: run as ``main()`` inside a child interpreter only.
GPUs get memory growth so TF does not take the whole card from the other frameworks' children.
"""

from __future__ import annotations

import glob
from typing import Any

from envcheck.smoke import _harness as h


def _on(t: Any, dev: str) -> bool:
    """Whether tensor ``t`` lives on ``dev`` ("/GPU:0" vs ".../device:GPU:0")."""
    kind, _, index = dev.strip("/").partition(":")
    return str(t.device).upper().endswith(f"{kind}:{index}".upper())


def _arithmetic(tf: Any, dev: str) -> str:
    # float: int32 tensors of TF stay in host memory even under a GPU scope
    with tf.device(dev):
        c = tf.constant(4.0) + tf.constant(3.0)
    h.check(_on(c, dev), f"result landed on {c.device}, not {dev}")
    got = float(c.numpy())
    h.check(got == 7.0, f"4 + 3 = {got}, expected 7")
    return f"4 + 3 = {got:g} on {dev}"


def _autograd(tf: Any, dev: str) -> str:
    with tf.device(dev):
        x = tf.Variable(3.0)
        with tf.GradientTape() as tape:
            y = x * x
        grad = tape.gradient(y, x)
    got = float(grad.numpy())
    h.check(got == 6.0, f"d(x^2)/dx at 3 = {got}, expected 6")
    return f"d(x^2)/dx at 3 = {got:g}"


def _train(tf: Any, dev: str, d: dict[str, Any]) -> str:
    with tf.device(dev):
        x, y = tf.constant(d["x"]), tf.constant(d["y"])
        w1, w2 = tf.Variable(d["w1"]), tf.Variable(d["w2"])
        losses = []
        for _ in range(h.STEPS):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2) - y))
            g1, g2 = tape.gradient(loss, [w1, w2])
            losses.append(float(loss.numpy()))
            w1.assign_sub(h.LEARNING_RATE * g1)
            w2.assign_sub(h.LEARNING_RATE * g2)
    return h.check_loss_fell(losses)


def _keras_fit(tf: Any, dev: str, d: dict[str, Any]) -> str:
    """The same network through tf.keras: mean squared error, so the rate is scaled by N*O."""
    keras = tf.keras
    const = keras.initializers.Constant
    with tf.device(dev):
        model = keras.Sequential(
            [
                keras.Input(shape=(h.D,)),
                keras.layers.Dense(h.H, activation="relu", use_bias=False, kernel_initializer=const(d["w1"])),
                keras.layers.Dense(h.OUT, use_bias=False, kernel_initializer=const(d["w2"])),
            ]
        )
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=h.LEARNING_RATE * h.N * h.OUT), loss="mse")
        hist = model.fit(d["x"], d["y"], batch_size=h.N, epochs=h.STEPS, shuffle=False, verbose=0)
    return h.check_loss_fell([float(v) for v in hist.history["loss"]])


def _matmul(tf: Any, dev: str, d: dict[str, Any], dtype: Any) -> Any:
    with tf.device(dev):
        c = tf.matmul(tf.cast(tf.constant(d["a"]), dtype), tf.cast(tf.constant(d["b"]), dtype))
        return tf.cast(c, tf.float32).numpy()


def _dtype(tf: Any, dev: str, d: dict[str, Any], name: str) -> str:
    tf.config.experimental.enable_tensor_float_32_execution(False)  # a true float32 reference
    return h.check_dtype(name, d, lambda dtype: _matmul(tf, dev, d, dtype), tf.float32, tf)


def _tf32(tf: Any, dev: str, d: dict[str, Any]) -> str:
    if "GPU" not in dev:
        raise h.Skip(h.NO_TF32)
    cc = tf.config.experimental.get_device_details(_physical(tf, dev)).get("compute_capability")
    if not cc or cc[0] < 8:
        raise h.Skip(f"compute capability {cc} has no TF32 (needs 8.0+)")
    exp = tf.config.experimental
    try:
        exp.enable_tensor_float_32_execution(False)
        ref = _matmul(tf, dev, d, tf.float32)
        exp.enable_tensor_float_32_execution(True)
        got = _matmul(tf, dev, d, tf.float32)
    finally:
        exp.enable_tensor_float_32_execution(False)
    return h.check_close("tf32", got, ref)


def _physical(tf: Any, dev: str) -> Any:
    kind, _, index = dev.strip("/").partition(":")
    return tf.config.list_physical_devices(kind)[int(index)]


def _device_name(tf: Any, dev: str) -> str | None:
    try:
        name = tf.config.experimental.get_device_details(_physical(tf, dev)).get("device_name")
    except Exception:  # details are optional (TPUs have none): the label still identifies it
        return None
    return str(name) if name else None


def _conv(tf: Any, dev: str, d: dict[str, Any]) -> str:
    h.check(bool(tf.test.is_built_with_cuda()), "this TensorFlow is not built with CUDA")
    tf.config.experimental.enable_tensor_float_32_execution(False)
    with tf.device("/CPU:0"):
        ref = tf.nn.conv2d(d["img"], d["filt"], strides=1, padding="SAME").numpy()
    with tf.device(dev):
        out = tf.nn.conv2d(tf.constant(d["img"]), tf.constant(d["filt"]), strides=1, padding="SAME")
    h.check(_on(out, dev), f"convolution ran on {out.device}, not {dev}")
    cudnn = tf.sysconfig.get_build_info().get("cudnn_version")
    return f"cuDNN {cudnn}, " + h.check_close("float32", out.numpy(), ref)


def _round_trip(tf: Any, dev: str) -> str:
    import numpy as np

    host = np.random.default_rng(1).standard_normal(h.ROUND_TRIP_ELEMENTS).astype(np.float32)
    with tf.device(dev):
        on_dev = tf.identity(tf.constant(host))
    h.check(_on(on_dev, dev), f"tensor landed on {on_dev.device}, not {dev}")
    h.check(bool(np.array_equal(host, on_dev.numpy())), "data changed on the way to the device and back")
    return f"{host.nbytes >> 20} MiB bit-exact"


def _nccl(tf: Any, gpus: list[str]) -> str:
    strategy = tf.distribute.MirroredStrategy(devices=gpus, cross_device_ops=tf.distribute.NcclAllReduce())

    def step() -> Any:
        ctx = tf.distribute.get_replica_context()
        value = tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32) * tf.ones([1024])
        return ctx.all_reduce("sum", value)

    results = strategy.experimental_local_results(strategy.run(step))
    expected = len(gpus) * (len(gpus) + 1) / 2
    for dev, res in zip(gpus, results, strict=True):
        got = res.numpy()
        h.check(bool((got == expected).all()), f"{dev} holds {got[0]}, expected {expected:g}")
    return f"sum over {len(gpus)} GPUs = {expected:g} on each"


def _tpu_init(tf: Any) -> None:
    """Connect to the local TPU when the machine has one (TF needs an explicit initialisation)."""
    if not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
        return
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)


def main() -> None:
    """Import TensorFlow, find its devices, run every test on each."""
    rec = h.Recorder("tensorflow")
    tf = rec.import_framework("tensorflow", lambda m: m.__version__)
    if tf is None:
        return
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        _tpu_init(tf)
        gpus = [f"/GPU:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]
        tpus = [f"/TPU:{i}" for i in range(len(tf.config.list_logical_devices("TPU")))]
    except Exception as exc:  # a broken driver or TPU runtime: the CPU still gets tested
        rec.add("accelerators", "devices", "fail", error=h.last_line(exc))
        gpus, tpus = [], []
    d = h.data()
    for dev in ["/CPU:0", *gpus, *tpus]:
        label = "cpu" if dev == "/CPU:0" else dev.strip("/").lower()
        name = "cpu" if dev == "/CPU:0" else _device_name(tf, dev)

        def run(test: str, func: Any, label: str = label, name: str | None = name) -> None:
            rec.run(label, test, func, device_name=name)

        run("arithmetic", lambda dev=dev: _arithmetic(tf, dev))
        run("autograd", lambda dev=dev: _autograd(tf, dev))
        run("train-2layer", lambda dev=dev: _train(tf, dev, d))
        run("keras-fit", lambda dev=dev: _keras_fit(tf, dev, d))
        for dtype in h.DTYPES:
            run(f"dtype-{dtype}", lambda dev=dev, dtype=dtype: _dtype(tf, dev, d, dtype))
        run("dtype-tf32", lambda dev=dev: _tf32(tf, dev, d))
        if "GPU" in dev:
            run("cudnn-conv", lambda dev=dev: _conv(tf, dev, d))
        if dev != "/CPU:0":
            run("round-trip", lambda dev=dev: _round_trip(tf, dev))
    if len(gpus) >= 2:
        rec.run("gpu:all", "nccl-all-reduce", lambda: _nccl(tf, gpus))
