"""The modules of tangermeme's own DeepLIFT tests (``tests/toy_models.py`` in jmschrei/tangermeme, which its
package does not ship), rebuilt here from their architectures: the same layers, shapes and operations in
``forward`` (a reshape by ``X.shape[0]``, ``Flatten``, a permute, an ``autograd.Function``, tuple outputs,
optional ``alpha``/``beta`` arguments), for sequences of ``LENGTH`` bp in torch's layout ``(N, 4, L)``.

``TOYS`` maps each name to ``(build, output, target)``: how to build it, and which output and target seqlift
explains (tangermeme's ``deep_lift_shap`` explains ``model(X)[:, target]`` of a ``(N, n_targets)`` output).
"""

import torch

LENGTH = 100


def flat(h):
    """``(N, ...)`` → ``(N, -1)`` as the toys flatten: a reshape by the batch size read from the tensor."""
    return h.reshape(h.shape[0], -1)


class SumModel(torch.nn.Module):
    def forward(self, X):
        return X.sum(axis=-1)  # (N, 4): the count of each base


class FlattenDense(torch.nn.Module):
    def __init__(self, seq_len=LENGTH, n_outputs=3):
        super().__init__()
        self.seq_len = seq_len
        self.dense = torch.nn.Linear(4 * seq_len, n_outputs)

    def forward(self, X, alpha=0, beta=1):
        return beta * self.dense(X.reshape(X.shape[0], 4 * self.seq_len)) + alpha


class Conv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 12, 3)

    def forward(self, X):
        return self.conv(X)


class Conv1(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv1d(4, 12, 3), torch.nn.Conv1d(12, 1, 5)

    def forward(self, X):
        return self.conv2(self.conv1(X))[:, 0]


class Scatter(torch.nn.Module):
    def forward(self, X):
        return X.permute(0, 2, 1)


class ConvDense(torch.nn.Module):
    def __init__(self, n_outputs=3):
        super().__init__()
        self.conv, self.dense = torch.nn.Conv1d(4, 12, 3), torch.nn.Linear(4 * LENGTH, n_outputs)

    def forward(self, X, alpha=0):
        return self.conv(X) + alpha, self.dense(flat(X))


class ConvAvgDense(torch.nn.Module):
    def __init__(self, n_outputs=1):
        super().__init__()
        self.conv, self.relu, self.dense = torch.nn.Conv1d(4, 12, 3), torch.nn.ReLU(), torch.nn.Linear(12, n_outputs)

    def forward(self, X):
        return self.dense(self.relu(self.conv(X)).mean(dim=-1))


class ConvPoolDense(torch.nn.Module):
    """Two blocks of convolution ('same'), ReLU and max pooling by 3, then Flatten and a dense layer."""

    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = torch.nn.Conv1d(4, 32, 3, padding="same"), torch.nn.ReLU(), \
            torch.nn.MaxPool1d(3)
        self.conv2, self.relu2, self.pool2 = torch.nn.Conv1d(32, 16, 5, padding="same"), torch.nn.ReLU(), \
            torch.nn.MaxPool1d(3)
        self.flatten, self.dense = torch.nn.Flatten(), torch.nn.Linear(16 * (LENGTH // 9), 1)

    def forward(self, X):
        h = self.pool1(self.relu1(self.conv1(X)))
        h = self.pool2(self.relu2(self.conv2(h)))
        return self.dense(self.flatten(h))


class SmallDeepSEA(torch.nn.Module):
    """Convolution, pooling, then ReLU (the order DeepSEA uses), twice; two dense layers."""

    def __init__(self, n_outputs=1):
        super().__init__()
        self.conv1, self.pool1, self.relu1 = torch.nn.Conv1d(4, 32, 3, padding="same"), torch.nn.MaxPool1d(3), \
            torch.nn.ReLU()
        self.conv2, self.pool2, self.relu2 = torch.nn.Conv1d(32, 16, 3, padding="same"), torch.nn.MaxPool1d(3), \
            torch.nn.ReLU()
        self.linear1, self.relu3 = torch.nn.Linear(16 * (LENGTH // 9), 20), torch.nn.ReLU()
        self.linear2 = torch.nn.Linear(20, n_outputs)

    def forward(self, X):
        h = self.relu1(self.pool1(self.conv1(X)))
        h = self.relu2(self.pool2(self.conv2(h)))
        return self.linear2(self.relu3(self.linear1(flat(h))))


class ResidualConv(torch.nn.Module):
    """A residual block on the 4 channels of the input itself (``conv2(act(conv1(X))) + X``), then dense."""

    def __init__(self, seq_len=LENGTH, n_outputs=1, activation=torch.nn.ReLU):
        super().__init__()
        self.conv1, self.act = torch.nn.Conv1d(4, 4, 3, padding="same"), activation()
        self.conv2 = torch.nn.Conv1d(4, 4, 3, padding="same")
        self.dense = torch.nn.Linear(4 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.conv2(self.act(self.conv1(X))) + X))


class Transformer(torch.nn.Module):
    """One encoder layer (2 heads of width 2, feed-forward of 8) over positions, then dense."""

    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model=4, nhead=2, dim_feedforward=8, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=1)
        self.dense = torch.nn.Linear(4 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.encoder(X.permute(0, 2, 1)).permute(0, 2, 1)))


class Conv2DExpand(torch.nn.Module):
    """The one-hot sequence as a one-channel image ``(N, 1, 4, L)``; a 2-D convolution as tall as the alphabet."""

    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.relu = torch.nn.Conv2d(1, 8, kernel_size=(4, 3)), torch.nn.ReLU()
        self.dense = torch.nn.Linear(8 * (seq_len - 2), n_outputs)

    def forward(self, X):
        return self.dense(flat(self.relu(self.conv(X.unsqueeze(1))).squeeze(2)))


class _Double(torch.autograd.Function):
    """``2x`` with its own backward: a linear custom function."""

    @staticmethod
    def forward(ctx, X):
        return 2.0 * X

    @staticmethod
    def backward(ctx, grad):
        return 2.0 * grad


class CustomLinear(torch.nn.Module):
    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.relu = torch.nn.Conv1d(4, 4, 3, padding="same"), torch.nn.ReLU()
        self.dense = torch.nn.Linear(4 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.relu(self.conv(_Double.apply(X)))))


class _Sqrt(torch.autograd.Function):
    """``√x`` with its own backward: a nonlinear custom function."""

    @staticmethod
    def forward(ctx, X):
        root = torch.sqrt(X)
        ctx.save_for_backward(root)
        return root

    @staticmethod
    def backward(ctx, grad):
        (root,) = ctx.saved_tensors
        return grad / (2.0 * root)


class CustomSqrtModule(torch.nn.Module):
    """The square root as a module of its own, for tangermeme to hook (``additional_nonlinear_ops``)."""

    def forward(self, X):
        return _Sqrt.apply(X)


class CustomSqrt(torch.nn.Module):
    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.sqrt = torch.nn.Conv1d(4, 4, 3, padding="same"), CustomSqrtModule()
        self.dense = torch.nn.Linear(4 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.sqrt(self.conv(X) + 5.0)))  # shifted to stay positive


class DilatedConv(torch.nn.Module):
    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(4, 8, 3, dilation=1, padding="same")
        self.conv2 = torch.nn.Conv1d(8, 8, 3, dilation=2, padding="same")
        self.conv3 = torch.nn.Conv1d(8, 8, 3, dilation=4, padding="same")
        self.relu, self.dense = torch.nn.ReLU(), torch.nn.Linear(8 * seq_len, n_outputs)

    def forward(self, X):
        h = X
        for conv in (self.conv1, self.conv2, self.conv3):
            h = self.relu(conv(h))
        return self.dense(flat(h))


class ConvBatchNorm(torch.nn.Module):
    """Convolution, batch normalization with running statistics of 0.5 and 2 (not 0 and 1), ReLU, dense."""

    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.bn, self.relu = torch.nn.Conv1d(4, 8, 3, padding="same"), torch.nn.BatchNorm1d(8), \
            torch.nn.ReLU()
        self.bn.running_mean.fill_(0.5)
        self.bn.running_var.fill_(2.0)
        self.dense = torch.nn.Linear(8 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.relu(self.bn(self.conv(X)))))


class ConvLayerNorm(torch.nn.Module):
    """Convolution, layer normalization over channels and positions together, ReLU, dense."""

    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.ln = torch.nn.Conv1d(4, 8, 3, padding="same"), torch.nn.LayerNorm([8, seq_len])
        self.relu, self.dense = torch.nn.ReLU(), torch.nn.Linear(8 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.relu(self.ln(self.conv(X)))))


class MultiActivation(torch.nn.Module):
    """Three convolutions followed by GELU, SiLU and Tanh in turn, then dense."""

    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv1, self.act1 = torch.nn.Conv1d(4, 8, 3, padding="same"), torch.nn.GELU()
        self.conv2, self.act2 = torch.nn.Conv1d(8, 8, 3, padding="same"), torch.nn.SiLU()
        self.conv3, self.act3 = torch.nn.Conv1d(8, 8, 3, padding="same"), torch.nn.Tanh()
        self.dense = torch.nn.Linear(8 * seq_len, n_outputs)

    def forward(self, X):
        h = self.act1(self.conv1(X))
        h = self.act2(self.conv2(h))
        return self.dense(flat(self.act3(self.conv3(h))))


class DropoutConv(torch.nn.Module):
    def __init__(self, seq_len=LENGTH, n_outputs=1):
        super().__init__()
        self.conv, self.dropout = torch.nn.Conv1d(4, 8, 3, padding="same"), torch.nn.Dropout(0.5)
        self.relu, self.dense = torch.nn.ReLU(), torch.nn.Linear(8 * seq_len, n_outputs)

    def forward(self, X):
        return self.dense(flat(self.relu(self.dropout(self.conv(X)))))


class MultiInputMultiOutput(torch.nn.Module):
    """Two outputs, a convolution shifted by ``alpha`` ``(N, 1)`` and a dense layer scaled by ``beta``."""

    def __init__(self, n_outputs=3):
        super().__init__()
        self.conv, self.dense = torch.nn.Conv1d(4, 12, 3), torch.nn.Linear(4 * LENGTH, n_outputs)

    def forward(self, X, alpha=0, beta=1):
        shift = alpha.unsqueeze(-1) if torch.is_tensor(alpha) else alpha
        return self.conv(X) + shift, beta * self.dense(flat(X))


MODULES = (SumModel, FlattenDense, Conv, Conv1, Scatter, ConvDense, ConvAvgDense, ConvPoolDense, SmallDeepSEA,
           ResidualConv, Transformer, Conv2DExpand, CustomLinear, CustomSqrt, DilatedConv, ConvBatchNorm, ConvLayerNorm,
           MultiActivation, DropoutConv, MultiInputMultiOutput)
# (output, logit) explained where it is not logit 0 of the only output
EXPLAINED = {"SumModel": (None, 2), "FlattenDense": (None, 1), "Conv": (None, 5), "Conv1": (None, 7), "Scatter": (None, 9),
             "ConvDense": (1, 2), "MultiInputMultiOutput": (1, 1)}
TOYS = {m.__name__: (m, *EXPLAINED.get(m.__name__, (None, 0))) for m in MODULES}
