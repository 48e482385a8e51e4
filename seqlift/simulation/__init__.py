"""The TAL1/GATA1 simulation of Shrikumar et al. 2017 (appendices F-I) and the benchmark built on it
(docs/method.md, "The TAL1/GATA1 simulation").

- ``data``: sequences, labels and the ground-truth motif positions; the shipped files and motif database.
- ``make``: a simulation folder in one step (``seqlift simulate``), and which files in it are seqlift's.
- ``model``: the paper's model and its training.
- ``metrics``: auROC/auPRC of motif positions, the paper's false negatives, Sensitivity-n.
- ``evaluation``: attribution methods judged against the ground truth (``seqlift benchmark``).

Only the CLI and this package know about the simulation: the general modules (``motifs``, ``plots``) take
the motif database and highlight colours as arguments.
"""

from .data import (CLASSES, MOTIF_COLOURS, MOTIF_FILES, PAPER_BACKGROUND, TASKS, Simulation, data_dir,  # noqa: F401
                   database_for, load_motif, log_odds, motif_database, read, simulate, write)
from .make import is_simulation_file, simulate_into, write_test_split  # noqa: F401
