"""Everything that depends on which Keras backend runs the model.

The rules and the graph walk use ``keras.ops`` only. Three things cannot be written that way:
differentiating a function with respect to its input, a gradient that depends on the sign of the
incoming gradient (guided backpropagation), and compilation. One adapter per backend lives here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native libraries print on file descriptor 2 (TensorFlow logs from C++ at import,
    before its log level applies); Python exceptions still propagate."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


try:
    with quiet_native_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow

            tensorflow.get_logger().setLevel("ERROR")  # one compiled step per task retraces by design
except ImportError as exc:  # KERAS_BACKEND (or --backend) names a framework that is not installed
    from .errors import SeqliftError

    chosen = os.environ.get("KERAS_BACKEND", "tensorflow")
    raise SeqliftError(f"cannot load the Keras backend '{chosen}' ({exc}); install it (pip install {chosen}) "
                       "or choose another with --backend or KERAS_BACKEND") from None

NAME = keras.backend.backend()


def _tf():
    import tensorflow as tf

    return tf


def input_gradient(fn, x):
    """Gradient of ``sum(fn(x)[0])`` with respect to ``x``; returns ``(gradient, fn(x))``.

    ``fn`` returns a tuple whose first element is a per-sample objective, shape ``(B,)``; the rest
    is passed back untouched (auxiliary outputs computed in the same forward pass).
    """
    if NAME == "tensorflow":
        tf = _tf()
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
            objective = tf.reduce_sum(out[0])
        return tape.gradient(objective, x), out
    if NAME == "jax":
        import jax

        def scalar(z):
            out = fn(z)
            return out[0].sum(), out

        grad, out = jax.grad(scalar, has_aux=True)(x)
        return grad, out
    if NAME == "torch":
        import torch

        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            out = fn(x)
            (grad,) = torch.autograd.grad(out[0].sum(), x)
        return grad, tuple(o.detach() for o in out)
    raise RuntimeError(f"Keras backend {NAME!r} is not supported; use tensorflow, jax or torch")


def elementwise_derivative(f, z):
    """``f'(z)`` for an elementwise function ``f``, by autodiff (the Rescale rule's limit)."""
    if NAME == "tensorflow":
        tf = _tf()
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = tf.reduce_sum(f(z))
        return tf.stop_gradient(tape.gradient(y, z))
    if NAME == "jax":
        import jax

        return jax.lax.stop_gradient(jax.grad(lambda v: f(v).sum())(z))
    if NAME == "torch":
        import torch

        with torch.enable_grad():
            v = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(f(v).sum(), v)
        return g.detach()
    raise RuntimeError(f"Keras backend {NAME!r} is not supported")


def positive_gradient(z):
    """Identity forward; backward lets only the positive part of the gradient through.

    Guided backpropagation (Springenberg et al. 2014) applied after a nonlinearity.
    """
    if NAME == "tensorflow":
        tf = _tf()

        @tf.custom_gradient
        def _guide(v):
            return tf.identity(v), lambda g: tf.nn.relu(g)

        return _guide(z)
    if NAME == "jax":
        import jax

        @jax.custom_vjp
        def _guide(v):
            return v

        _guide.defvjp(lambda v: (v, None), lambda _, g: (jax.nn.relu(g),))
        return _guide(z)
    if NAME == "torch":
        import torch

        class _Guide(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v):
                return v.clone()

            @staticmethod
            def backward(ctx, g):
                return torch.relu(g)

        return _Guide.apply(z)
    raise RuntimeError(f"Keras backend {NAME!r} is not supported")


def _torch_multiplier():
    import torch

    class _WithMultiplier(torch.autograd.Function):
        """Forward: ``value``; backward: ``grad · multiplier`` with respect to ``d``."""

        @staticmethod
        def forward(ctx, value, multiplier, d):
            ctx.save_for_backward(multiplier)
            return value

        @staticmethod
        def backward(ctx, grad):
            (multiplier,) = ctx.saved_tensors
            return None, None, grad * multiplier

    return _WithMultiplier


def with_multiplier(value, multiplier, d):
    """``value`` in the forward pass, gradient ``multiplier`` with respect to ``d`` (same shapes).

    Written with stop-gradients (``sg(value) + sg(m)·(d − sg(d))``) it is backend-free, and XLA
    fuses the extra arithmetic away; eager PyTorch would pay three more full passes per nonlinearity,
    so there it is a custom autograd function.
    """
    if NAME == "torch" and tuple(multiplier.shape) == tuple(d.shape) == tuple(value.shape):
        return _TORCH_MULTIPLIER.apply(value.detach(), multiplier.detach(), d)
    sg = keras.ops.stop_gradient
    return sg(value) + sg(multiplier) * (d - sg(d))


_TORCH_MULTIPLIER = _torch_multiplier() if NAME == "torch" else None


def compile(fn):
    """Compile a function of fixed-shape tensors (traced once per input shape).

    TensorFlow compiles with XLA, which fuses the rules' elementwise arithmetic into the
    surrounding kernels (1.76x → 1.37x the plain forward+backward time on the benchmark's CPU);
    ``SEQLIFT_XLA=0`` turns it off. The torch backend runs eagerly unless ``SEQLIFT_TORCH_COMPILE=1``.
    """
    if NAME == "tensorflow":
        return _tf().function(fn, jit_compile=os.environ.get("SEQLIFT_XLA", "1") != "0")
    if NAME == "jax":
        import jax

        return jax.jit(fn)
    if os.environ.get("SEQLIFT_TORCH_COMPILE") == "1":
        # Measured on 2 CPU cores (BPNet-like, 1000 bp x 20 shuffles): 1.77x -> 1.29x the plain pass, after a
        # 45 s warm-up, so it pays off from a few hundred sequences on; off by default.
        import torch

        return torch.compile(fn)
    return fn  # torch: eager


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is the backend running out of device memory (the batch can be split)."""
    if NAME == "tensorflow" and isinstance(exc, _tf().errors.ResourceExhaustedError):
        return True
    if NAME == "torch":
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    return "RESOURCE_EXHAUSTED" in str(exc) or "out of memory" in str(exc).lower()


def float_dtype() -> str:
    """The dtype the engine computes in: Keras's floatx, float32 unless a caller (the float64 precision
    benchmark) sets another before building its model."""
    return keras.config.floatx()


def to_tensor(array, device: str | None = None):
    """A tensor of ``float_dtype()`` on the backend's default device (or ``device``: 'cpu'/'gpu')."""
    array = np.ascontiguousarray(array, dtype=float_dtype())
    if device is None:
        return keras.ops.convert_to_tensor(array)
    with keras.device(_device_name(device)):
        return keras.ops.convert_to_tensor(array)


def _device_name(device: str) -> str:
    return "cpu:0" if device == "cpu" else "gpu:0"


def to_numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


@functools.cache
def gpu_available() -> bool:
    """Whether the backend sees an accelerator it will place tensors on."""
    if NAME == "tensorflow":
        with quiet_native_stderr():
            return bool(_tf().config.list_physical_devices("GPU"))
    if NAME == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if NAME == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def gpu_free_memory() -> int | None:
    """Bytes free on the first GPU the backend uses, or None where it cannot say (or there is no GPU).

    JAX and TensorFlow take most of the device when they start, so what their allocator holds unused
    counts as free: JAX's ``bytes_limit`` less what is in use; TensorFlow reports no total, so the driver
    is asked (``nvidia-smi``) for the first visible device's, less what TensorFlow's tensors use.
    """
    if not gpu_available():
        return None
    try:
        if NAME == "torch":
            import torch

            cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
            return int(torch.cuda.mem_get_info()[0] + cached)
        if NAME == "jax":
            import jax

            stats = next(d for d in jax.devices() if d.platform == "gpu").memory_stats() or {}
            if "bytes_limit" in stats:
                return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
            return None
        import subprocess

        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
        answer = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                                 f"--id={visible}"], capture_output=True, text=True, timeout=20, check=True)
        in_use = _tf().config.experimental.get_memory_info("GPU:0")["current"]
        return int(answer.stdout.split()[0]) * 2**20 - int(in_use)
    except Exception:  # noqa: BLE001 - a driver or backend that cannot say: the caller falls back
        return None


def tensor_device(tensor) -> str:
    """Where a tensor lives, as the backend names it (for checks and the score file)."""
    if NAME == "tensorflow":
        return str(tensor.device)
    if NAME == "jax":
        return ",".join(str(d) for d in tensor.devices())
    return str(tensor.device)


@contextlib.contextmanager
def scope(device: str | None = None):
    """Where and how the engine computes: on 'cpu', 'gpu' or the backend's default device, in full
    float32. GPUs otherwise run float32 matrix products and convolutions in TF32 (10-bit mantissa;
    JAX's default on NVIDIA GPUs, and cuDNN's under PyTorch), which breaks summation to delta."""
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(keras.device(_device_name(device)))
        if NAME == "jax":
            import jax

            stack.enter_context(jax.default_matmul_precision("float32"))
        elif NAME == "torch":
            import torch

            stack.enter_context(torch.backends.cudnn.flags(enabled=True, allow_tf32=False))
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            stack.callback(setattr, torch.backends.cuda.matmul, "allow_tf32", previous)
        elif NAME == "tensorflow":
            tf = _tf()
            previous = tf.config.experimental.tensor_float_32_execution_enabled()
            tf.config.experimental.enable_tensor_float_32_execution(False)
            stack.callback(tf.config.experimental.enable_tensor_float_32_execution, previous)
        yield
