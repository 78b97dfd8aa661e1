import json
import subprocess
import sys

SNIPPET = """
import logging
from service.logs import configure_logging
configure_logging("info", "json")
logging.getLogger("service").info("model loaded")
logging.getLogger("uvicorn.error").warning("uvicorn says hi")
"""


def test_logs_are_json_lines_on_stdout_and_nothing_on_stderr() -> None:
    # containers and process managers collect stdout; stderr stays free for crashes
    done = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("info", "service", "model loaded"),
        ("warning", "uvicorn.error", "uvicorn says hi"),
    ]
