"""The compose-your-own-loop example in docs/trainer.md runs and learns."""

import contextlib
import io
import re
from pathlib import Path

from trainer.threads import blas_threads

DOC = Path(__file__).resolve().parents[2] / "docs" / "trainer.md"


def test_compose_your_own_loop_example_runs_and_learns():
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- tested: compose-your-own-loop -->\n```python\n(.*?)```", text, re.S)
    assert match, "the tested example is missing from docs/trainer.md"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), blas_threads(1):  # 1 thread: robust on a busy machine
        exec(compile(match.group(1), str(DOC), "exec"), {})
    accuracy = float(re.fullmatch(r"training accuracy: (\d\.\d+)\n", out.getvalue()).group(1))
    assert accuracy >= 0.9
