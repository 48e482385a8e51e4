"""Everything that depends on which Keras backend runs the model.

The rules and the graph walk use ``keras.ops`` only. Three things cannot be written that way:
differentiating a function with respect to its input, a gradient that depends on the sign of the
incoming gradient (guided backpropagation), and compilation. One adapter per backend lives here.
"""

from __future__ import annotations

import abc
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


class Backend(abc.ABC):
    """What differs between Keras backends: autodiff, custom gradients, compilation, the GPU and its precision.

    One subclass per backend; ``ADAPTER`` is the one Keras runs on. Everything else (tensors, dtypes, devices)
    goes through ``keras.ops`` and lives in the module's plain functions.
    """

    # Pairs (input × reference) per compiled step on a GPU when the caller gives no batch size. XLA (TensorFlow,
    # JAX) frees each intermediate once used: 4096 pairs of the 1000 bp benchmark model fit in ~40 GB.
    pairs_per_step_gpu = 4096
    # Whether device='cpu' needs the GPU hidden before Keras is imported (the backend ignores the device scope).
    cpu_needs_hidden_gpu = False

    def __init__(self, name: str):
        self.name = name

    @abc.abstractmethod
    def input_gradient(self, fn, x):
        """Gradient of ``sum(fn(x)[0])`` with respect to ``x``; returns ``(gradient, fn(x))``.

        ``fn`` returns a tuple whose first element is a per-sample objective, shape ``(B,)``; the rest
        is passed back untouched (auxiliary outputs computed in the same forward pass).
        """

    @abc.abstractmethod
    def elementwise_derivative(self, f, z):
        """``f'(z)`` for an elementwise function ``f``, by autodiff (the Rescale rule's limit)."""

    @abc.abstractmethod
    def positive_gradient(self, z):
        """Identity forward; backward lets only the positive part of the gradient through.

        Guided backpropagation (Springenberg et al. 2014) applied after a nonlinearity.
        """

    def with_multiplier(self, value, multiplier, d):
        """``value`` in the forward pass, gradient ``multiplier`` with respect to ``d`` (same shapes).

        Written with stop-gradients (``sg(value) + sg(m)·(d − sg(d))``) it is backend-free, and XLA
        fuses the extra arithmetic away.
        """
        sg = keras.ops.stop_gradient
        return sg(value) + sg(multiplier) * (d - sg(d))

    @abc.abstractmethod
    def compile(self, fn):
        """Compile a function of fixed-shape tensors (traced once per input shape)."""

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the backend running out of device memory (the batch can be split)."""
        return "RESOURCE_EXHAUSTED" in str(exc) or "out of memory" in str(exc).lower()

    @abc.abstractmethod
    def gpu_available(self) -> bool:
        """Whether the backend sees an accelerator it will place tensors on (uncached: see ``gpu_available()``)."""

    @abc.abstractmethod
    def gpu_free_memory(self) -> int | None:
        """Bytes free on the first GPU the backend uses, or None where it cannot say; may raise."""

    def tensor_device(self, tensor) -> str:
        """Where a tensor lives, as the backend names it (for checks and the score file)."""
        return str(tensor.device)

    @abc.abstractmethod
    def full_float32(self, stack: contextlib.ExitStack) -> None:
        """Enter on ``stack`` what keeps float32 matrix products and convolutions in full float32."""


class TensorFlowBackend(Backend):
    def input_gradient(self, fn, x):
        tf = _tf()
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
            objective = tf.reduce_sum(out[0])
        return tape.gradient(objective, x), out

    def elementwise_derivative(self, f, z):
        tf = _tf()
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = tf.reduce_sum(f(z))
        return tf.stop_gradient(tape.gradient(y, z))

    def positive_gradient(self, z):
        tf = _tf()

        @tf.custom_gradient
        def _guide(v):
            return tf.identity(v), lambda g: tf.nn.relu(g)

        return _guide(z)

    def compile(self, fn):
        # XLA fuses the rules' elementwise arithmetic into the surrounding kernels (1.76x → 1.37x the plain
        # forward+backward time on the benchmark's CPU); SEQLIFT_XLA=0 turns it off.
        return _tf().function(fn, jit_compile=os.environ.get("SEQLIFT_XLA", "1") != "0")

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, _tf().errors.ResourceExhaustedError) or super().is_out_of_memory(exc)

    def gpu_available(self) -> bool:
        with quiet_native_stderr():
            return bool(_tf().config.list_physical_devices("GPU"))

    def gpu_free_memory(self) -> int | None:
        # TensorFlow takes most of the device when it starts and reports no total: the driver is asked
        # (nvidia-smi) for the first visible device's, less what TensorFlow's tensors use.
        import subprocess

        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0"
        answer = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                                 f"--id={visible}"], capture_output=True, text=True, timeout=20, check=True)
        in_use = _tf().config.experimental.get_memory_info("GPU:0")["current"]
        return int(answer.stdout.split()[0]) * 2**20 - int(in_use)

    def full_float32(self, stack: contextlib.ExitStack) -> None:
        tf = _tf()
        previous = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        stack.callback(tf.config.experimental.enable_tensor_float_32_execution, previous)


class JaxBackend(Backend):
    def input_gradient(self, fn, x):
        import jax

        def scalar(z):
            out = fn(z)
            return out[0].sum(), out

        grad, out = jax.grad(scalar, has_aux=True)(x)
        return grad, out

    def elementwise_derivative(self, f, z):
        import jax

        return jax.lax.stop_gradient(jax.grad(lambda v: f(v).sum())(z))

    def positive_gradient(self, z):
        import jax

        @jax.custom_vjp
        def _guide(v):
            return v

        _guide.defvjp(lambda v: (v, None), lambda _, g: (jax.nn.relu(g),))
        return _guide(z)

    def compile(self, fn):
        import jax

        return jax.jit(fn)

    def gpu_available(self) -> bool:
        import jax

        return any(d.platform == "gpu" for d in jax.devices())

    def gpu_free_memory(self) -> int | None:
        # JAX takes most of the device when it starts: what its allocator holds unused counts as free.
        import jax

        stats = next(d for d in jax.devices() if d.platform == "gpu").memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return None

    def tensor_device(self, tensor) -> str:
        return ",".join(str(d) for d in tensor.devices())

    def full_float32(self, stack: contextlib.ExitStack) -> None:
        import jax

        stack.enter_context(jax.default_matmul_precision("float32"))


class TorchBackend(Backend):
    # Eager PyTorch keeps every intermediate of the step alive until the backward pass (~35 GB at 1024 pairs
    # of the 1000 bp benchmark model).
    pairs_per_step_gpu = 1024
    cpu_needs_hidden_gpu = True

    def __init__(self, name: str):
        super().__init__(name)
        self._multiplier = _torch_multiplier()

    def input_gradient(self, fn, x):
        import torch

        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            out = fn(x)
            (grad,) = torch.autograd.grad(out[0].sum(), x)
        return grad, tuple(o.detach() for o in out)

    def elementwise_derivative(self, f, z):
        import torch

        with torch.enable_grad():
            v = z.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(f(v).sum(), v)
        return g.detach()

    def positive_gradient(self, z):
        import torch

        class _Guide(torch.autograd.Function):
            @staticmethod
            def forward(ctx, v):
                return v.clone()

            @staticmethod
            def backward(ctx, g):
                return torch.relu(g)

        return _Guide.apply(z)

    def with_multiplier(self, value, multiplier, d):
        # Eager PyTorch would pay three more full passes per nonlinearity for the stop-gradients.
        if tuple(multiplier.shape) == tuple(d.shape) == tuple(value.shape):
            return self._multiplier.apply(value.detach(), multiplier.detach(), d)
        return super().with_multiplier(value, multiplier, d)

    def compile(self, fn):
        # Eager unless SEQLIFT_TORCH_COMPILE=1. Measured on 2 CPU cores (BPNet-like, 1000 bp x 20 shuffles):
        # 1.77x -> 1.29x the plain pass, after a 45 s warm-up, so it pays off from a few hundred sequences on.
        if os.environ.get("SEQLIFT_TORCH_COMPILE") == "1":
            import torch

            return torch.compile(fn)
        return fn

    def is_out_of_memory(self, exc: BaseException) -> bool:
        import torch

        return isinstance(exc, torch.OutOfMemoryError) or super().is_out_of_memory(exc)

    def gpu_available(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def gpu_free_memory(self) -> int | None:
        import torch

        cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
        return int(torch.cuda.mem_get_info()[0] + cached)

    def full_float32(self, stack: contextlib.ExitStack) -> None:
        import torch

        stack.enter_context(torch.backends.cudnn.flags(enabled=True, allow_tf32=False))
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        stack.callback(setattr, torch.backends.cuda.matmul, "allow_tf32", previous)


class UnsupportedBackend(Backend):
    """A Keras backend seqlift has no adapter for (numpy, openvino): what needs autodiff is refused when
    called; the rest runs as it would on torch's eager path."""

    def input_gradient(self, fn, x):
        raise RuntimeError(f"Keras backend {self.name!r} is not supported; use tensorflow, jax or torch")

    def elementwise_derivative(self, f, z):
        raise RuntimeError(f"Keras backend {self.name!r} is not supported")

    def positive_gradient(self, z):
        raise RuntimeError(f"Keras backend {self.name!r} is not supported")

    compile = TorchBackend.compile

    def gpu_available(self) -> bool:
        return False

    def gpu_free_memory(self) -> int | None:
        return None

    def full_float32(self, stack: contextlib.ExitStack) -> None:
        pass


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


ADAPTERS = {"tensorflow": TensorFlowBackend, "jax": JaxBackend, "torch": TorchBackend}
ADAPTER: Backend = ADAPTERS.get(NAME, UnsupportedBackend)(NAME)


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
    """Whether the backend sees an accelerator it will place tensors on (asked once)."""
    return ADAPTER.gpu_available()


def gpu_free_memory() -> int | None:
    """Bytes free on the first GPU the backend uses, or None where it cannot say (or there is no GPU).

    JAX and TensorFlow take most of the device when they start, so what their allocator holds unused
    counts as free (see each adapter's ``gpu_free_memory``).
    """
    if not gpu_available():
        return None
    try:
        return ADAPTER.gpu_free_memory()
    except Exception:  # noqa: BLE001 - a driver or backend that cannot say: the caller falls back
        return None


@contextlib.contextmanager
def scope(device: str | None = None):
    """Where and how the engine computes: on 'cpu', 'gpu' or the backend's default device, in full
    float32. GPUs otherwise run float32 matrix products and convolutions in TF32 (10-bit mantissa;
    JAX's default on NVIDIA GPUs, and cuDNN's under PyTorch), which breaks summation to delta."""
    with contextlib.ExitStack() as stack:
        if device is not None:
            stack.enter_context(keras.device(_device_name(device)))
        ADAPTER.full_float32(stack)
        yield
