"""``seqlift view``: a local, read-only web server for one score or variant file (and a ``seqlift motifs`` folder).

It binds to 127.0.0.1 on a free port by default; every request must carry the random token printed in the URL
(403 without it), and only these paths exist (404 for anything else, ``../`` included):

- ``/``: the page (script and style inline);
- ``/api/meta``, ``/api/rows``, ``/api/record``, ``/api/motifs``, ``/api/seqlets``, ``/api/hits``: JSON;
- ``/motif/PATTERN.png``: a pattern's CWM logo from the motifs folder, for a pattern its ``motifs.tsv`` names.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from ..errors import SeqliftError
from .data import open_source
from .page import Viewer

# Rows per page of the table.
PAGE_ROWS = 50


class _Handler(BaseHTTPRequestHandler):
    viewer: Viewer
    token: str

    def log_message(self, format, *args):  # noqa: A002 - quiet: the terminal shows the URL only
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not hmac.compare_digest(query.get("token", ""), self.token):
            return self._send(HTTPStatus.FORBIDDEN, b"forbidden: open the URL seqlift view printed (it holds the token)",
                              "text/plain")
        path = unquote(url.path)
        try:
            if path == "/":
                return self._send(HTTPStatus.OK, self.viewer.page({"mode": "server", "token": self.token}).encode(),
                                  "text/html; charset=utf-8")
            if path.startswith("/api/") and path[5:] in _API:
                return self._json(_API[path[5:]](self.viewer, query))
            if path.startswith("/motif/") and path.endswith(".png"):
                png = self.viewer.motif_png(path[len("/motif/"):-len(".png")])
                if png is not None:
                    return self._send(HTTPStatus.OK, png, "image/png")
        except (SeqliftError, ValueError, KeyError) as exc:
            return self._send(HTTPStatus.BAD_REQUEST, str(exc).encode(), "text/plain")
        return self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def _json(self, value):
        self._send(HTTPStatus.OK, json.dumps(value, allow_nan=False).encode(), "application/json")

    def _send(self, status, body: bytes, kind: str):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def _rows(viewer: Viewer, q: dict) -> dict:
    task = viewer.task_index(q.get("task", "0"))
    order = viewer.source.order(task, q.get("sort", ""), q.get("desc", "1") == "1", q.get("q", ""))
    offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", PAGE_ROWS)), 1000)
    return {"total": len(order), "offset": offset, "rows": viewer.source.table(task, order[offset:offset + limit])}


_API = {
    "meta": lambda viewer, q: viewer.meta(),
    "rows": _rows,
    "record": lambda viewer, q: viewer.record(int(q["i"]), viewer.task_index(q.get("task", "0"))),
    "motifs": lambda viewer, q: viewer.motifs(),
    "seqlets": lambda viewer, q: viewer.seqlets_of(q["pattern"]),
    "hits": lambda viewer, q: viewer.hits_of(q["motif"]),
}


def serve(scores, motifs_dir=None, host="127.0.0.1", port=0, ready=lambda url: None, stop: threading.Event = None,
          hits_dir=None):
    """Serve ``scores`` (and ``motifs_dir``, ``hits_dir``) until Ctrl-C (or ``stop`` is set); ``ready(url)`` gets
    the URL with its token once the server listens. Returns when stopped."""
    viewer = Viewer(open_source(scores), motifs_dir, hits_dir)
    handler = type("Handler", (_Handler,), {"viewer": viewer, "token": secrets.token_urlsafe(24)})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        viewer.close()
        raise SeqliftError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
    server.daemon_threads = True
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_address[1]}/?token={handler.token}"
    if stop is not None:
        threading.Thread(target=lambda: (stop.wait(), server.shutdown()), daemon=True).start()
    try:
        ready(url)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a server is stopped: a clean end, not an error
    finally:
        server.server_close()
        viewer.close()
    return url


def write_page(scores, out, motifs_dir=None, top=500, names=None, inputs=(), hits_dir=None) -> Path:
    """``seqlift view --out view.html``: one self-contained page (script, style and data inline, no network)
    holding the ``top`` sequences by prediction of the first task, or those listed in the file ``names``."""
    from ..outputs import Outputs

    inputs = [scores, motifs_dir, hits_dir, names, *inputs]
    outputs = Outputs(inputs)
    outputs.check_file(out, ours=_is_view_page)
    viewer = Viewer(open_source(scores), motifs_dir, hits_dir)
    try:
        chosen = viewer.choose(top, _read_names(names) if names else None)
        page = viewer.page({"mode": "file", "data": viewer.embedded(chosen)})
    finally:
        viewer.close()
    with outputs:
        outputs.file(out, ours=_is_view_page).write_text(page, encoding="utf-8")
    return Path(out)


def _read_names(path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise SeqliftError(f"--names {path}: file not found")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise SeqliftError(f"--names {path}: not a text file of names, one per line") from None
    if not names:
        raise SeqliftError(f"--names {path}: holds no names")
    return names


def _is_view_page(path) -> bool:
    from .page import PAGE_MARK

    try:
        with open(path, encoding="utf-8") as handle:
            return PAGE_MARK in handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
