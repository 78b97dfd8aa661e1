"""A per-epoch tqdm bar with running loss/accuracy; a no-op when disabled (quiet mode, library use)."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, desc: str, *, enabled: bool) -> None:
        self._bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=True, mininterval=0.2, dynamic_ncols=True,
                         disable=not enabled)  # fmt: skip
        self._pending = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._bar.close()

    def update(self, loss: float, accuracy: float) -> None:
        # tqdm.update is cheap, set_postfix is not: refresh the numbers only when the bar redraws
        if self._bar.disable:
            return
        self._pending += 1
        if self._bar.update(self._pending):
            self._bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", refresh=False)
        self._pending = 0

    def finish(self, loss: float, acc: float, val_loss: float | None, val_acc: float | None) -> None:
        postfix = {"loss": f"{loss:.4f}", "acc": f"{acc:.4f}"}
        if val_loss is not None and val_acc is not None:
            postfix |= {"val_loss": f"{val_loss:.4f}", "val_acc": f"{val_acc:.4f}"}
        self._bar.set_postfix(postfix)
