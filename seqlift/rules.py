"""DeepLIFT rules for the primitive operations a model is lowered to (by a front end, ``seqlift.frontends``).

Each primitive has three passes, all written with ``keras.ops``:

- ``forward(xs)``: the activation on the actual inputs, shape ``(B, ...)``.
- ``delta(xs, ds, ctx)``: the difference-from-reference of its output for every (input, reference)
  pair, shape ``(B*R, ...)``, given its inputs' actual activations ``xs`` and differences ``ds``.
  Differences are propagated directly (a linear layer maps ``Δx`` to ``W Δx``, without bias), which
  keeps float32 rounding out of ``t(x) - t(ref)``.
- ``split(xs, ds, parts, ctx)``: for RevealCancel, the positive and negative parts of the output
  difference (Shrikumar et al. 2017, §3.5.3 and appendix B).

Multipliers are never propagated by hand. A nonlinearity returns its output difference ``Δy`` as
``Δy + sg(m)·(Δx − sg(Δx))`` (``sg`` = stop-gradient): the value is exactly ``Δy`` and the gradient
with respect to ``Δx`` is ``m``. Linear operations have the gradient they always have (``m = W``,
appendix A), so one backward pass of the backend's autodiff yields the DeepLIFT multipliers (the
chain rule for multipliers, §3.3). The same identity gives RevealCancel's separate ``m+``/``m−``
through the sign-split linear maps of appendix B.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import backend  # first: loads Keras quietly

from keras import ops  # noqa: E402

# Where |Δx| is below this fraction of max(|x|, |x0|), the secant Δy/Δx is replaced by its limit f'(x).
TINY = 1e-6
# Maxima of a reference's activations this close (relative) are tied (MaxPool).
REFERENCE_TIES = 1e-4
_FLOAT32_LOWEST = -3.0e38


@dataclass
class Context:
    """What every rule needs to know about the batch being explained."""

    n_refs: int  # R: references per input; differences have batch size B*R


def by_pair(x, d, n_refs):
    """Actual activation ``(B, ...)`` and differences ``(B*R, ...)`` as ``(B, 1, ...)``, ``(B, R, ...)``."""
    return ops.expand_dims(x, 1), ops.reshape(d, (-1, n_refs) + tuple(d.shape[1:]))


def flat_pairs(v):
    """``(B, R, ...)`` back to ``(B*R, ...)``."""
    return ops.reshape(v, (-1,) + tuple(v.shape[2:]))


def per_pair(x, n_refs):
    """Actual activations ``(B, ...)`` repeated for each of their references: ``(B*R, ...)``."""
    return flat_pairs(ops.repeat(ops.expand_dims(x, 1), n_refs, axis=1))


def with_multiplier(value, multiplier, d):
    """``value`` in the forward pass; gradient ``multiplier`` with respect to ``d`` (and no other)."""
    return backend.ADAPTER.with_multiplier(value, multiplier, d)


def positive_part(d):
    """``max(Δ, 0)`` whose multiplier is 1 where Δ > 0 and ½ where Δ = 0 (appendix B)."""
    slope = ops.where(d > 0, 1.0, ops.where(d == 0, 0.5, 0.0))
    return with_multiplier(ops.stop_gradient(ops.maximum(d, 0.0)), slope, d)


def negative_part(d):
    """``min(Δ, 0)`` whose multiplier is 1 where Δ < 0 and ½ where Δ = 0 (appendix B)."""
    slope = ops.where(d < 0, 1.0, ops.where(d == 0, 0.5, 0.0))
    return with_multiplier(ops.stop_gradient(ops.minimum(d, 0.0)), slope, d)


def _abs_with_zero_slope(d):
    """``|Δ|`` with slope sign(Δ), and 0 where Δ = 0 (whatever the backend's choice for abs at 0)."""
    return with_multiplier(ops.stop_gradient(ops.abs(d)), ops.sign(d), d)


def sign_split(d):
    return positive_part(d), negative_part(d)


def _is_tiny(d, a, b):
    return ops.abs(d) <= TINY * ops.maximum(ops.abs(a), ops.abs(b))


def _safe_ratio(num, den, tiny, fallback):
    return ops.where(tiny, fallback, num / ops.where(tiny, 1.0, den))


def bilinear(f, a, da_in, b, db_in):
    """``Δf(a, b)`` for a bilinear ``f`` (element-wise product, einsum, matmul): the product rule.

    ``Δf = f(ā, Δb) + f(Δa, b̄)`` with ``ā = a − ½Δa`` the mean of ``a`` on the input and on the
    reference (Shrikumar et al. 2016, §2.3.5: ``m(Δa) = b̄``, ``m(Δb) = ā``). It equals
    ``f(a, b) − f(a0, b0)`` exactly for any bilinear ``f``, and is linear in ``(Δa, Δb)``, so autodiff
    gives the multipliers. ``a``, ``b``: actual values broadcastable to their differences ``da_in``, ``db_in``.
    """
    a_mean = ops.stop_gradient(a - 0.5 * da_in)
    b_mean = ops.stop_gradient(b - 0.5 * db_in)
    return f(a_mean, db_in) + f(da_in, b_mean)


def softmax_difference(x, d_in, axis=-1):
    """``Δ softmax(x)`` along ``axis`` for pairs; ``x`` and ``d_in`` both ``(B*R, ...)``.

    The log-ratio rule of tangermeme 1.6, written as its primitives: ``softmax(x) = exp(x − lse)``
    with ``lse = log Σ exp(x)``; ``Δlse = m_log · Σ_i m_exp,i Δx_i`` (Rescale of each exponential,
    then of the log of their sum), ``x − lse`` is linear, and the outer ``exp`` is Rescale. Every
    multiplier is a secant, so ``Σ m·Δx = Δy`` exactly and each is bounded by the slopes it averages.
    Differences are formed as multiplier × Δ (a linear map of ``d_in``), keeping Δ's precision.
    """
    x0 = x - ops.stop_gradient(d_in)
    # log Σ exp on each side with its own shift: logits far apart (a wide profile head's, ~1e3) would
    # underflow the other side's sum to 0 under one shared shift, and log(0) makes every score NaN.
    lse, lse0 = _log_sum_exp(x, axis), _log_sum_exp(x0, axis)
    shift = ops.stop_gradient(ops.maximum(lse, lse0))
    a, a0 = ops.exp(x - shift), ops.exp(x0 - shift)  # either side may underflow to 0: the secants stay finite
    s, s0 = ops.exp(lse - shift), ops.exp(lse0 - shift)  # the sums, scaled alike; the larger one is 1
    m_exp = ops.stop_gradient(_secant(ops.exp, x0 - shift, x - shift, a))
    m_log = ops.stop_gradient(_log_secant(s0, s, lse0 - shift, lse - shift))
    d_lse = m_log * ops.sum(m_exp * d_in, axis=axis, keepdims=True)
    z, z0 = x - lse, x0 - lse0  # log softmax on the input and on the reference
    m_out = ops.stop_gradient(_secant(ops.exp, z0, z, ops.exp(z)))
    return m_out * (d_in - d_lse)


class Op:
    """A primitive operation of the lowered graph.

    name: where it came from in the model (a Keras layer's name, a torch module path); kind: what
    the front end called it (a Keras layer class, an ATen operator). Weights are plain arrays.
    """

    #: 'linear' ops have m = their Jacobian; the engine may ask them for a RevealCancel split.
    linear = True

    def __init__(self, name: str, kind: str = ""):
        self.name = name
        self.kind = kind

    def describe(self) -> str:
        return f"layer '{self.name}' ({self.kind})"

    def forward(self, xs):
        raise NotImplementedError

    def delta(self, xs, ds, ctx):
        raise NotImplementedError

    def split(self, xs, ds, parts, ctx):
        """Positive and negative parts of a linear op's output difference, for RevealCancel.

        ``parts()`` returns the inputs' own (positive, negative) parts, computed only if asked for.
        (The engine splits the output of a nonlinear op by sign itself.) By default the output
        difference is split by sign, as after a nonlinearity: always valid, Δy+ + Δy− = Δy.
        """
        return sign_split(self.delta(xs, ds, ctx))


class Input(Op):
    """Node 0: the explained input."""


class Structural(Op):
    """A weight-free linear map with non-negative coefficients (reshape, add, concatenate, average pooling, ...).

    ``fn`` (a function of the list of input tensors, written with ``keras.ops``) is applied to
    activations, to differences, and to each sign part unchanged: a sum of positive terms stays
    positive (Shrikumar et al. 2017, §3.5.1).
    """

    def __init__(self, name, kind, fn):
        super().__init__(name, kind)
        self.fn = fn

    def forward(self, xs):
        return self.fn(xs)

    def delta(self, xs, ds, ctx):
        return self.fn(ds)

    def split(self, xs, ds, parts, ctx):
        parts = parts()
        return self.fn([p for p, _ in parts]), self.fn([n for _, n in parts])


class Subtract(Structural):
    def __init__(self, name, kind="Subtract"):
        super().__init__(name, kind, lambda v: v[0] - v[1])

    def split(self, xs, ds, parts, ctx):
        (ap, an), (bp, bn) = parts()
        return ap - bn, an - bp


class Affine(Op):
    """``y = f(xs) + c`` with ``f`` linear, of either sign (scaling by a constant, a mean over a
    constant mask, ...): Δy = f(Δx), split by sign (Linear rule, §3.5.1). ``offset``: ``c`` or None."""

    def __init__(self, name, kind, fn, offset=None):
        super().__init__(name, kind)
        self.fn, self.offset = fn, offset

    def forward(self, xs):
        y = self.fn(xs)
        return y if self.offset is None else y + self.offset

    def delta(self, xs, ds, ctx):
        return self.fn(ds)


class Weighted(Op):
    """Dense or convolution without its activation: ``y = W x + b``; Δy = W Δx (Linear rule, §3.5.1).

    kernel, bias: arrays (``ops.convert_to_tensor`` of the model's weights, or None for no bias).
    """

    normalizable = True  # its kernel's second-to-last axis is the input channel (see normalize())

    def __init__(self, name, kind, kernel, bias):
        super().__init__(name, kind)
        self.kernel = kernel
        self.bias = bias
        self.offset_kernel = None  # set by normalize(): the per-column means moved into the bias

    def apply(self, x, kernel):
        raise NotImplementedError

    def ones_column(self, x):
        """A mask of ones with one input channel, the shape of ``x`` otherwise (see ``normalize``)."""
        return ops.ones_like(x[..., :1])

    def normalize(self):
        """Mean-normalize the kernel across input channels (Shrikumar et al. 2016, §2.6; 2017, app. K).

        ``W' = W − mean_c W`` and the removed means become a bias computed from a mask of ones, so
        the output on one-hot input is unchanged for every padding mode (at the edges of a 'same'
        or 'causal' convolution only the positions inside the sequence contribute to the bias).
        """
        kernel = ops.convert_to_numpy(self.kernel)  # a constant from now on
        means = kernel.mean(axis=-2, keepdims=True)
        self.kernel = ops.convert_to_tensor(kernel - means)
        self.offset_kernel = ops.convert_to_tensor(means)

    def forward(self, xs):
        (x,) = xs
        y = self.apply(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        if self.offset_kernel is not None:
            y = y + self.apply(self.ones_column(x), self.offset_kernel)
        return y

    def delta(self, xs, ds, ctx):
        return self.apply(ds[0], self.kernel)

    def split(self, xs, ds, parts, ctx):
        # Appendix B: Δy+ = W+ Δx+ + W− Δx−, Δy− = W+ Δx− + W− Δx+, from the total Δx. With W± = ½(W ± |W|)
        # these are ½(W Δx ± |W| |Δx|): two products instead of four, and the same multipliers (W± on
        # the terms of each sign, ½W where Δx = 0, as appendix B's ½ slopes give).
        d = ds[0]
        total = self.apply(d, self.kernel)
        spread = self.apply(_abs_with_zero_slope(d), ops.abs(ops.convert_to_tensor(self.kernel)))
        return 0.5 * (total + spread), 0.5 * (total - spread)


class Dense(Weighted):
    """``y = x W + b`` over the last axis; kernel ``(C_in, C_out)``."""

    def apply(self, x, kernel):
        return ops.matmul(x, kernel)


class Conv1D(Weighted):
    """A 1-D convolution; kernel ``(K, C_in / groups, C_out)``, activations ``(B, L, C)``, or ``(B, C, L)``
    when ``channels_first`` (a torch model's own layout: transposed around the convolution).

    padding: 'valid', 'same', 'causal', or ``(left, right)`` zeros added to the length axis.
    """

    def __init__(self, name, kind, kernel, bias, strides=1, dilation=1, padding="valid", groups=1,
                 channels_first=False):
        if channels_first and bias is not None:
            bias = ops.reshape(bias, (-1, 1))  # added along the channel axis of (B, C, L)
        super().__init__(name, kind, kernel, bias)
        self.strides = [strides] if isinstance(strides, int) else list(strides)
        self.dilation = dilation
        self.groups = groups
        self.channels_first = channels_first
        if padding == "causal":
            padding = (int(_first(dilation)) * (int(kernel.shape[0]) - 1), 0)
        self.padding = padding

    def ones_column(self, x):
        return ops.ones_like(x[:, :1]) if self.channels_first else ops.ones_like(x[..., :1])

    def apply(self, x, kernel):
        padding = self.padding
        if not isinstance(padding, str):
            left, right = padding
            reach = int(_first(self.dilation)) * (int(kernel.shape[0]) - 1)
            if left == right == reach // 2 and reach % 2 == 0 and self.strides == [1]:
                padding = "same"  # the backend pads inside the convolution: no padded copy
            else:
                widths = [(0, 0), (0, 0), (left, right)] if self.channels_first else [(0, 0), (left, right), (0, 0)]
                x = ops.pad(x, widths)
                padding = "valid"
        if self.channels_first:  # channels-last convolutions run on every backend and device (TF's CPU kernels
            # have no NCW); XLA folds the transposes into the convolution
            y = ops.conv(ops.transpose(x, (0, 2, 1)), kernel, strides=self.strides, padding=padding,
                         dilation_rate=self.dilation)
            return ops.transpose(y, (0, 2, 1))
        return ops.conv(x, kernel, strides=self.strides, padding=padding, dilation_rate=self.dilation)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


class BatchNorm(Op):
    """Inference-mode batch normalization, ``y = s·x + c`` per channel (Linear rule).

    ``forward`` computes what the framework computes (``ops.batch_normalization`` with the stored
    statistics); ``shape``: where the channel axis is, broadcast against the activations.
    """

    def __init__(self, name, kind, ndim, axes, mean, variance, gamma, beta, epsilon):
        super().__init__(name, kind)
        axes = list(axes) if isinstance(axes, (list, tuple)) else [axes]
        shape = [1] * ndim
        for a in axes:
            shape[a] = -1
        self.shape = shape
        self.axis = axes[0] if len(axes) == 1 else axes
        self.mean, self.variance, self.gamma, self.beta, self.epsilon = mean, variance, gamma, beta, epsilon
        scale = ops.rsqrt(ops.convert_to_tensor(variance) + epsilon)
        if gamma is not None:
            scale = scale * gamma
        self.scale = scale

    def forward(self, xs):
        return ops.batch_normalization(xs[0], mean=self.mean, variance=self.variance, axis=self.axis,
                                       offset=self.beta, scale=self.gamma, epsilon=self.epsilon)

    def delta(self, xs, ds, ctx):
        return ds[0] * ops.reshape(self.scale, self.shape)

    def split(self, xs, ds, parts, ctx):
        (dp, dn), s = parts()[0], ops.reshape(self.scale, self.shape)
        s_pos, s_neg = ops.maximum(s, 0.0), ops.minimum(s, 0.0)
        return s_pos * dp + s_neg * dn, s_pos * dn + s_neg * dp


class EinsumDense(Weighted):
    """``y = einsum(equation, x, W) + b`` (Linear rule): attention's projections, and the layer itself."""

    normalizable = False  # its kernel's input axis is not always second to last

    def __init__(self, name, kind, kernel, bias, equation):
        super().__init__(name, kind, kernel, bias)
        self.equation = equation

    def apply(self, x, kernel):
        return ops.einsum(self.equation, x, kernel)


class LayerNorm(Op):
    """``y = γ·A·v + β`` with ``A = x − mean(x)``, ``v = (mean(A²) + ε)^−½`` over ``axes``.

    tangermeme 1.6's rule, written as its primitives: the centering is linear; ``mean(A²)`` by
    Rescale of the square (secant ``A + A0``); ``v`` by Rescale; ``A·v`` by the product rule
    (``bilinear``). RMS normalization is the same without the centering. ``Σ m·Δx = Δy`` exactly.
    """

    linear = False

    def __init__(self, name, kind, ndim, axes, epsilon, gamma, beta, center=True):
        super().__init__(name, kind)
        self.axes = tuple(sorted(a % ndim for a in axes))

        def broadcast(param):  # (sizes of the normalized axes) -> 1 on every other axis
            shape = [1] * ndim
            for a, size in zip(self.axes, param.shape[-len(self.axes):]):
                shape[a] = int(size)
            return ops.reshape(param, shape)

        self.gamma = None if gamma is None else broadcast(gamma)
        self.beta = None if beta is None else broadcast(beta)
        self.epsilon, self.center = epsilon, center

    def _centered(self, v):
        return v - ops.mean(v, axis=self.axes, keepdims=True) if self.center else v

    def _affine(self, y, bias):
        if self.gamma is not None:
            y = y * self.gamma
        return y + self.beta if bias and self.beta is not None else y

    def forward(self, xs):
        a = self._centered(xs[0])
        v = ops.rsqrt(ops.mean(a * a, axis=self.axes, keepdims=True) + self.epsilon)
        return self._affine(a * v, bias=True)

    def delta(self, xs, ds, ctx):
        a, da = self._centered(per_pair(xs[0], ctx.n_refs)), self._centered(ds[0])
        a0 = a - ops.stop_gradient(da)
        var, var0 = (ops.mean(v * v, axis=self.axes, keepdims=True) for v in (a, a0))
        d_var = ops.mean(ops.stop_gradient(a + a0) * da, axis=self.axes, keepdims=True)  # Rescale of the square
        v = ops.rsqrt(var + self.epsilon)
        m_v = _secant(lambda u: ops.rsqrt(u + self.epsilon), var0, var, -0.5 * v ** 3)  # Rescale
        d_v = ops.stop_gradient(m_v) * d_var
        return self._affine(bilinear(ops.multiply, a, da, v, d_v), bias=False)


class Elementwise(Op):
    """``y = f(x)`` elementwise: Rescale (§3.5.2) or RevealCancel (§3.5.3)."""

    linear = False

    def __init__(self, name, kind, fn, fn_name: str):
        super().__init__(name, kind)
        self.fn = fn
        self.fn_name = fn_name

    def describe(self) -> str:
        return f"activation '{self.fn_name}' of layer '{self.name}' ({self.kind})"

    def forward(self, xs):
        return self.fn(xs[0])

    def delta(self, xs, ds, ctx):
        x, d = by_pair(xs[0], ds[0], ctx.n_refs)
        dv = ops.stop_gradient(d)  # the secant is a value: only the multiplier term enters autodiff
        x0 = x - dv
        slope = backend.ADAPTER.elementwise_derivative(self.fn, x)  # (B, 1, ...): only B evaluations
        m = _secant(self.fn, x0, x, slope)
        return flat_pairs(with_multiplier(m * dv, m, d))

    def reveal_cancel(self, xs, parts, ctx):
        """RevealCancel from the input's positive and negative differences (appendix B's split)."""
        (dp_in, dn_in), n = parts()[0], ctx.n_refs
        x, dp_in = by_pair(xs[0], dp_in, n)
        dn_in = ops.reshape(dn_in, dp_in.shape)
        dp, dn = ops.stop_gradient(dp_in), ops.stop_gradient(dn_in)
        f = self.fn
        x0 = x - (dp + dn)
        xp, xn = x0 + dp, x0 + dn
        g0, gp, gn = (backend.ADAPTER.elementwise_derivative(f, v) for v in (x0, xp, xn))
        # Δy+ = ½[f(x0+Δ+) − f(x0)] + ½[f(x) − f(x0+Δ−)], each difference as secant × Δ+ (same for Δy−)
        m_pos = 0.5 * (_secant(f, x0, xp, g0) + _secant(f, xn, x, gn))
        m_neg = 0.5 * (_secant(f, x0, xn, g0) + _secant(f, xp, x, gp))
        # A neuron whose output did not change (a ReLU off on x and on x0) gets exactly 0, not the rounding
        # residue of m+Δ+ + m−Δ−: the next layer's sign split would send that residue to one part.
        dy = ops.where(f(x) == f(x0), 0.0, m_pos * dp + m_neg * dn)
        dy = with_multiplier(dy, m_pos, dp_in)
        dy = dy + m_neg * (dn_in - dn)
        return flat_pairs(dy)


def _log_sum_exp(x, axis):
    """``log Σ exp(x)`` along ``axis`` (kept), finite for any finite ``x``."""
    peak = ops.stop_gradient(ops.max(x, axis=axis, keepdims=True))
    return peak + ops.log(ops.sum(ops.exp(x - peak), axis=axis, keepdims=True))


def _log_secant(a, b, log_a, log_b):
    """``(log b − log a) / (b − a)`` for positive ``a``, ``b`` given with their logs (``a`` may have
    underflowed to 0 where ``log a`` is finite), or ``1 / b`` where ``b − a`` is tiny."""
    span = b - a
    return _safe_ratio(log_b - log_a, span, _is_tiny(span, a, b), 1.0 / b)


def _secant(f, a, b, fallback):
    """``(f(b) − f(a)) / (b − a)``, or ``fallback`` (a derivative) where ``b − a`` is tiny.

    The denominator is the difference the two float32 points really have (``b − a`` is exact for
    nearby floats), not the propagated Δx they were made from: ``a = x − Δx`` rounds at the scale of
    ``x``, and dividing ``f(b) − f(a)`` by Δx would carry that rounding into the multiplier (an error
    of about ε·|x|/|Δx|, even for a ReLU that is linear on both points). Output differences are then
    formed as secant × Δx, so they keep Δx's precision and summation to delta stays exact.
    """
    span = b - a
    tiny = _is_tiny(span, a, b)
    return _safe_ratio(f(b) - f(a), span, tiny, fallback)


class Softmax(Op):
    """A softmax over ``axis`` (a Softmax layer, an activation, attention's weights): see
    ``softmax_difference``. As the model's final activation it is removed instead (2016, §2.5)."""

    linear = False

    def __init__(self, name, kind, axis=-1):
        super().__init__(name, kind)
        self.axis = axis

    def forward(self, xs):
        return ops.softmax(xs[0], axis=self.axis)

    def delta(self, xs, ds, ctx):
        return softmax_difference(per_pair(xs[0], ctx.n_refs), ds[0], self.axis)


def _first_maximum(v, top, tolerance=0.0):
    """One-hot ``(N, R, L_out, pool, C)`` of the first maximum ``top`` ``(N, R, L_out, C)`` of each window of ``v``;
    values within ``tolerance`` of it (relative) are tied with it."""
    top = ops.expand_dims(top, 3)
    tied = ops.cast(top - v <= tolerance * ops.abs(top), v.dtype)
    return ops.one_hot(ops.argmax(tied, axis=3), v.shape[3], axis=3)


class MaxPool(Op):
    """Max pooling: each window's Δy goes to one input, with multiplier ``m = Δy / Δx_j`` there.

    When the window's maximum rose (Δy ≥ 0), ``j`` is the input that is the maximum in the actual
    input: the seeds' rule (Shrikumar et al. 2016, §2.3.2). When it fell (Δy < 0), ``j`` is the
    maximum of the reference instead. Then ``|Δx_j| ≥ |Δy|`` always, so ``m`` lies in [0, 1]: the
    seeds' rule alone would give multipliers of any size and sign when the maximum falls (x = (1, 0),
    ref = (0.5, 2): m = −2 on the first input; x = (1.15, 0), ref = (1.15 + 6e-5, 1.68): m = 8770),
    which turns float32 rounding into completeness errors and noise into hypothetical scores.
    Summation to delta holds exactly in every case. Among tied maxima the first is chosen, and an
    input that did not change (Δx = 0, where the secant is undefined) takes the gradient: 1 at the
    first maximum of the actual input, 0 elsewhere. Both are what torch's max pooling gives
    tangermeme 1.6 (and captum), whose hypothetical scores then equal seqlift's; with one-hot
    input, ties and unchanged windows are common. A reference's activations are ``x − Δ``, whose
    rounding would break its ties: its maxima within ``REFERENCE_TIES`` (relative) are tied.
    """

    linear = False

    def __init__(self, name, kind, pool: int | None, stride: int | None, padding: str, keepdims=False):
        super().__init__(name, kind)
        self.pool, self.stride, self.padding, self.keepdims = pool, stride, padding, keepdims

    def _windows(self, v, fill):
        """``(N, L, C)`` → ``(N, L_out, pool, C)``, padding with ``fill`` as the layer does."""
        length = v.shape[1]
        if self.pool is None:  # global
            return ops.expand_dims(v, 1)
        k, s = self.pool, self.stride
        if self.padding == "same":
            n_out = -(-length // s)
            total = max((n_out - 1) * s + k - length, 0)
            v = ops.pad(v, [(0, 0), (total // 2, total - total // 2), (0, 0)], constant_values=fill)
        else:
            n_out = (length - k) // s + 1
        if s == k:
            v = v[:, : n_out * k]
            return ops.reshape(v, (-1, n_out, k, v.shape[-1]))
        index = [[j * s + i for i in range(k)] for j in range(n_out)]
        return ops.take(v, ops.convert_to_tensor(index, dtype="int32"), axis=1)

    def _out(self, y):
        if self.pool is None and not self.keepdims:
            return y[:, 0]
        return y

    def forward(self, xs):
        return self._out(ops.max(self._windows(xs[0], _FLOAT32_LOWEST), axis=2))

    def delta(self, xs, ds, ctx):
        x, d_in = by_pair(self._windows(xs[0], _FLOAT32_LOWEST), self._windows(ds[0], 0.0), ctx.n_refs)
        d = ops.stop_gradient(d_in)
        x0 = x - d
        y, y0 = ops.max(x, axis=3), ops.max(x0, axis=3)
        dy = y - y0
        # a reference's activations are x − Δ, whose rounding would break their ties (equal windows of DNA)
        at_x, at_ref = _first_maximum(x, y), _first_maximum(x0, y0, REFERENCE_TIES)
        selected = ops.where(ops.expand_dims(dy >= 0, 3), at_x, at_ref)
        d_sel = ops.sum(selected * d, axis=3)
        span = ops.sum(selected * (x - x0), axis=3)  # what d_sel became in float32 (see _secant)
        m = _safe_ratio(dy, span, _is_tiny(span, y, y0), 1.0)
        dy = m * d_sel  # a max that stays at one input moves by exactly that input's Δ
        m = ops.where(_is_tiny(d, x, x0), at_x, ops.expand_dims(m, 3) * selected)  # unchanged: the gradient
        dy = dy + ops.sum(m * (d_in - d), axis=3)
        return self._out(flat_pairs(dy))


class Bilinear(Op):
    """A product of two activations, ``y = f(a, b)`` for a bilinear ``f``: the product rule (``bilinear``).

    Attention's scores (query · key) and its weighted sum of values (weights · value) are einsums.
    """

    linear = False

    def __init__(self, name, kind, fn):
        super().__init__(name, kind)
        self.fn = fn

    def forward(self, xs):
        return self.fn(xs[0], xs[1])

    def delta(self, xs, ds, ctx):
        a, b = (per_pair(x, ctx.n_refs) for x in xs)
        return bilinear(self.fn, a, ds[0], b, ds[1])


class Multiply(Op):
    """Element-wise product: ``m(x1) = x̄2``, ``m(x2) = x̄1``, the means over input and reference
    (``bilinear``; 2016, §2.3.5). More than two factors are multiplied left to right, one product
    rule at a time. Gates multiply wherever they occur in the model.
    """

    linear = False

    def forward(self, xs):
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y

    def delta(self, xs, ds, ctx):
        n = ctx.n_refs
        a, da = by_pair(xs[0], ds[0], n)
        for x, d in zip(xs[1:], ds[1:]):
            b, db = by_pair(x, d, n)
            a, da = a * b, bilinear(ops.multiply, a, da, b, db)
        return flat_pairs(da)


class FixedInput(Op):
    """A model input held at the same value for an input and each of its references: Δ = 0, so it
    shifts activations but contributes nothing (e.g. a BPNet control track).

    ``values()`` returns the packed values of every fixed input while a compiled step runs, ``(b, E)``
    with b dividing the batch: one row serves consecutive samples (an input's references, mutants or
    interpolation steps); None means zeros. This input is columns ``offset:offset + size``, shape S.
    """

    def __init__(self, name, shape, offset, values):
        super().__init__(name, "FixedInput")
        self.shape, self.offset, self.values = tuple(shape), offset, values
        self.size = 1
        for s in self.shape:
            self.size *= s

    def forward(self, xs):
        batch, packed = xs[0].shape[0], self.values()
        if packed is None:
            return ops.zeros((batch,) + self.shape)
        value = packed[:, self.offset:self.offset + self.size]
        value = ops.repeat(value, batch // packed.shape[0], axis=0)
        return ops.reshape(value, (batch,) + self.shape)

    def delta(self, xs, ds, ctx):
        return ops.zeros((ds[0].shape[0],) + self.shape)

    def split(self, xs, ds, parts, ctx):
        zero = self.delta(xs, ds, ctx)
        return zero, zero


class LogSumExp(Op):
    """``y = log Σ exp(x)`` over ``axis``: Rescale of each exponential, then of the log of their sum
    (the inner part of ``softmax_difference``), so ``Σ m·Δx = Δy`` exactly."""

    linear = False

    def __init__(self, name, kind, axis, keepdims=False):
        super().__init__(name, kind)
        self.axis, self.keepdims = axis, keepdims

    def forward(self, xs):
        return ops.logsumexp(xs[0], axis=self.axis, keepdims=self.keepdims)

    def delta(self, xs, ds, ctx):
        x, d_in = per_pair(xs[0], ctx.n_refs), ds[0]
        x0 = x - ops.stop_gradient(d_in)
        shift = ops.stop_gradient(ops.max(ops.maximum(x, x0), axis=self.axis, keepdims=True))
        x, x0 = x - shift, x0 - shift
        a, a0 = ops.exp(x), ops.exp(x0)
        s, s0 = ops.sum(a, axis=self.axis, keepdims=True), ops.sum(a0, axis=self.axis, keepdims=True)
        m_exp = ops.stop_gradient(_secant(ops.exp, x0, x, a))
        m_log = ops.stop_gradient(_secant(ops.log, s0, s, 1.0 / s))
        d_lse = m_log * ops.sum(m_exp * d_in, axis=self.axis, keepdims=True)
        return d_lse if self.keepdims else ops.squeeze(d_lse, axis=self.axis)


class Fixed(Op):
    """An operation whose inputs are all held fixed (a function of a control track, ``log(X_ctl + 1)``):
    its value shifts activations and its difference is 0, so it needs no rule, only ``op.forward``."""

    def __init__(self, op):
        super().__init__(op.name, op.kind)
        self.op = op

    def forward(self, xs):
        return self.op.forward(xs)

    def delta(self, xs, ds, ctx):
        y = self.op.forward(xs)
        return ops.zeros((ds[0].shape[0],) + tuple(y.shape[1:]), dtype=y.dtype)

    def split(self, xs, ds, parts, ctx):
        zero = self.delta(xs, ds, ctx)
        return zero, zero
