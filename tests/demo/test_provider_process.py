"""The demo's provider process serves on loopback and exits when the demo's pipe closes."""

import json
import subprocess
import sys
import urllib.request


def test_provider_process_serves_then_exits_when_its_stdin_closes():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gensight.demo.provider", "--latency-s", "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("fake provider listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[-1].strip().removesuffix("/v1")
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        proc.stdin.close()  # what the demo's death looks like to the provider
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
