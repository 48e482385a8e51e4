"""The TAL1/GATA1 simulation of Shrikumar et al. 2017 (appendices F-I) and the benchmark built on it
(docs/method.md, "The TAL1/GATA1 simulation").

- ``data``: sequences, labels and the ground-truth motif positions; the shipped files and motif database.
- ``make``: a simulation folder in one step (``seqlift simulate``), and which files in it are seqlift's.
- ``model``: the paper's model and its training.
- ``metrics``: auROC/auPRC of motif positions, the paper's false negatives, Sensitivity-n.
- ``evaluation``: attribution methods judged against the ground truth (``seqlift benchmark``).

Only this package and the CLI's simulation commands (``simulate``, ``benchmark``) know about the simulation:
the general modules and commands (``motifs``, ``logo``) take the motif database and highlight colours from the
user's files (``--motif-db``; a ``--motifs`` table's names and colour column).
"""

from .data import (CLASSES, DATABASE_NAME, MOTIF_FILES, PAPER_BACKGROUND, TASKS, Simulation,  # noqa: F401
                   data_dir, load_motif, log_odds, motif_database, read, simulate, write)
from .make import is_simulation_file, simulate_into, write_test_split  # noqa: F401
