"""Test-wide settings: reference computations (Keras's own predict) in exact float32 on GPUs too."""

import keras

if keras.backend.backend() == "jax":
    import jax

    jax.config.update("jax_default_matmul_precision", "float32")
elif keras.backend.backend() == "torch":
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
elif keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
