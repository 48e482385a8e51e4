"""The TAL1/GATA1 simulation of Shrikumar et al. 2017 (appendices F-I) and the benchmark built on it.

``data``: sequences, labels and ground-truth motif positions; ``evaluation``: attribution methods judged
against that ground truth (``seqlift benchmark``). Nothing outside this package imports it: the CLI
passes its motif database and colours to the general modules.
"""

from .data import *  # noqa: F401,F403
