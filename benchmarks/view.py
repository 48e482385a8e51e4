"""``seqlift view`` on a large score file (issue 21): time to the first table and to the first logo, and the
server's peak memory.

The file is the bigWig benchmark's synthetic score file (``benchmarks/bigwig.py``: the layout ``seqlift score``
writes for BED input, 1,000 bp windows) with 100,000 sequences and no TSV summary beside it, so the server sums
the total-contribution column itself, in the background. A ``seqlift view`` process is started; the clock runs
from its start to (1) the first page of the table answered (``/api/rows``, sorted by prediction), (2) the first
record (``/api/record``: what a logo is drawn from), and (3) the totals column complete. Then, where Debian's
chromium and playwright are installed, the page itself: from navigation to the first row's 1,000 × 4 letter glyphs
drawn (the page selects the first row once the table shows). Peak memory is the server process's maximum resident
set, read from /proc while it runs.

Usage: python benchmarks/view.py [--n-windows 100000] [--folder DIR] [--json benchmarks/results/view_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bigwig import layout, write_score_file  # noqa: E402  (the same synthetic file)


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=600) as response:
        return json.loads(response.read())


def browser(url: str) -> dict:
    """Seconds from opening the page to its table, and to the first row's logo drawn, in headless chromium."""
    import shutil

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if chromium is None:
        return {}
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = launched.new_page()
        began = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#rows tbody tr")
        table = time.perf_counter() - began
        page.wait_for_function("document.body.dataset.ready === '1'")
        logo = time.perf_counter() - began
        glyphs = page.locator("path.glyph").count()
        launched.close()
    return {"browser_table_s": round(table, 2), "browser_first_logo_s": round(logo, 2), "browser_glyphs": glyphs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-windows", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=None, help="where the file goes (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        scores = Path(tmp) / "big.h5"
        _, windows = layout(args.n_windows, args.length, 500)
        began = time.perf_counter()
        write_score_file(scores, windows, np.arange(len(windows)), args.length)
        result = {"n_sequences": len(windows), "length": args.length, "cores": os.cpu_count(),
                  "score_file_GB": round(scores.stat().st_size / 1e9, 2),
                  "write_synthetic_s": round(time.perf_counter() - began, 1)}
        print(result, flush=True)
        began = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "seqlift.cli.main", "view", str(scores)],
                                  stderr=subprocess.PIPE, text=True)
        try:
            line = server.stderr.readline()
            url = re.search(r"(http://\S+)", line).group(1)
            result["listening_s"] = round(time.perf_counter() - began, 2)
            base, token = url.split("/?")
            rows = get(f"{base}/api/rows?{token}&task=0&sort=prediction&desc=1")
            result["first_table_s"] = round(time.perf_counter() - began, 2)
            get(f"{base}/api/record?{token}&i={rows['rows'][0]['i']}&task=0")
            result["first_logo_data_s"] = round(time.perf_counter() - began, 2)
            while get(f"{base}/api/meta?{token}")["totals_done"] < len(windows):
                time.sleep(0.5)
            result["totals_complete_s"] = round(time.perf_counter() - began, 1)
            get(f"{base}/api/rows?{token}&task=0&sort=total&desc=1&offset=50000")
            result.update(browser(url))
            result["server_peak_rss_MB"] = round(peak_rss_mb(server.pid), 1)
        finally:
            server.terminate()
            server.wait(30)
        print(result, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
