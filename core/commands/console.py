"""The command line's one progress printer (stderr) for every long command.

On a terminal, steps that change what is happening (a new stage or message)
stay as lines and fine-grained progress (training batches, slabs, bytes)
rewrites one status line. Elsewhere (a log, a pipe) only the lines are written,
plus the first event of each quiet stage, so that logs stay short. Training
epochs always end in a line with their losses.
"""

from __future__ import annotations

import sys
from typing import Iterable, TextIO

from ..errors import printable
from ..progress import Progress, format_eta


def describe(ev: Progress) -> str:
    """``stage [40%]: message, about 2 min 10 s left``."""
    frac = f" [{100 * ev.fraction:.0f}%]" if ev.fraction is not None and ev.fraction < 1 else ""
    eta = format_eta(ev.eta_s)
    text = f"{ev.stage}{frac}: {ev.message}" if ev.message else f"{ev.stage}{frac}"
    return f"{text}, {eta}" if eta else text


class ConsolePrinter:
    """``drive(gen, printer)``; ``quiet_stages``: stages whose events are
    fine-grained progress (shown on the status line only)."""

    def __init__(self, quiet_stages: Iterable[str] = (), stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = frozenset(quiet_stages)
        self.last_line = self.last_stage = ""
        self.status_shown = False

    def __call__(self, ev: Progress) -> None:
        phase = getattr(ev, "phase", None)  # core.training.trainer.TrainingProgress
        if phase == "epoch_end":
            val = getattr(ev, "val_loss", None)
            best = getattr(ev, "best_val_loss", None)
            text = (
                f"epoch {getattr(ev, 'epoch', 0)}: train loss {_num(getattr(ev, 'loss', None))}, "
                f"validation loss {_num(val)} (best {_num(best)})"
            )
            eta = format_eta(ev.eta_s)
            self.line(f"{text}, {eta}" if eta else text)
        elif phase is not None or ev.stage in self.quiet:
            if self.tty:
                loss = getattr(ev, "loss", None)
                self.status(describe(ev) + (f", loss {loss:.4f}" if loss is not None else ""))
            elif ev.stage != self.last_stage:
                self.line(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)
        else:
            text = describe(ev)
            key = f"{ev.stage}: {ev.message}"
            if key != self.last_line:
                self.line(text)
                self.last_line = key
            elif self.tty:
                self.status(text)
        self.last_stage = ev.stage

    def line(self, text: str) -> None:
        text = printable(text)  # event messages may carry text from the ring server
        self.stream.write(("\r\033[K" if self.status_shown else "") + text + "\n")
        self.status_shown = False
        self.stream.flush()

    def status(self, text: str) -> None:
        self.stream.write("\r\033[K" + printable(text))
        self.status_shown = True
        self.stream.flush()

    def close(self) -> None:
        if self.status_shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.status_shown = False


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"
