"""A confirmed decision survives kill -9 of `nctool review`, whatever else opened the store meanwhile."""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from cli_helpers import run_cli
from review_helpers import write_review_files

from nctool.data.decisions import default_decisions_path, read_decisions


class Server:
    """`nctool review` in a subprocess on a free port; the page's address (and token) read from what it prints."""

    def __init__(self, data_path, scores_path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from nctool.cli import main; main()", "review", str(data_path), "--scores",
             str(scores_path), "--reviewer", "ana", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "80"})
        url = self._printed_url()
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]

    def _printed_url(self) -> str:
        deadline, printed = time.monotonic() + 120, b""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server stopped: {self.process.stderr.read().decode()}")
            if select.select([self.process.stdout], [], [], 0.2)[0]:
                printed += os.read(self.process.stdout.fileno(), 4096)
                found = re.search(rb"http://\S+", printed)
                if found and printed.endswith(b"\n"):
                    return found.group().decode()
        raise AssertionError(f"the server printed no address within 120 s: {printed!r}")

    def request(self, path: str, body: dict | None = None) -> bytes:
        headers = {"X-Nctool-Token": self.token}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, headers=headers, method="GET" if body is None else "POST",
                                         data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            return response.read()

    def kill(self) -> None:
        """Stop as a power cut would: no shutdown code runs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def test_decisions_confirmed_after_an_export_and_another_reader_survive_kill_9(tmp_path):
    data_path, scores_path = write_review_files(tmp_path)
    store_path = default_decisions_path(scores_path)
    server = Server(data_path, scores_path)
    try:
        decided = {"p04": "drop", "p07": "keep", "p10": "drop"}
        for pair_id, action in decided.items():
            server.request("/api/decision", {"pair_id": pair_id, "action": action})
        assert server.request("/api/export").startswith(b"PAR1")  # the page's "export decisions" link
        filtered = run_cli("filter", data_path, "--scores", scores_path, "--detector", "rrsitr", "--decisions",
                           store_path, "--out", tmp_path / "clean.parquet")  # another process opens the store
        assert filtered.returncode == 0, filtered.stderr
        later = {"p13": "keep", "p16": "drop", "p19": "keep"}
        for pair_id, action in later.items():
            server.request("/api/decision", {"pair_id": pair_id, "action": action})
        decided.update(later)
        server.request("/api/decision", {"pair_id": "p01", "action": "fix", "new_caption": "a taxiway"})
        decided["p01"] = "fix"
    finally:
        server.kill()
    stored = read_decisions(store_path).set_index("pair_id")["action"].to_dict()
    assert stored == decided
