"""``seqlift view``: browse a score or variant file (and its motifs) in a web page.

``serve`` runs a local, read-only server for one file; ``write_page`` writes one self-contained page to send to a
colleague. The page itself is plain HTML, CSS and JavaScript in ``static/``, with no build step and no network.
"""

from .server import serve, write_page  # noqa: F401
