"""The PyTorch front end: an ``nn.Module`` captured with ``torch.export`` and lowered to seqlift's graph.

``models`` gets the module (an object, ``FILE.py:FUNCTION``, a state dict as ``--weights``, a pickled
model only when asked for); ``lowering`` captures it, decomposed to core ATen operators, and lowers
each operator with the table ``lowering.ATEN``. torch is imported only here.
"""

from __future__ import annotations

from .lowering import lower  # noqa: F401
from .models import is_model, load, weights  # noqa: F401
