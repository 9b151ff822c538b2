"""A dependency-free progress line for long runs.

On a terminal the line is redrawn in place; otherwise (logs, CI) it is printed about every
tenth of the run, so a log file holds a readable trace rather than thousands of lines.
"""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """``Progress(total, label)``; call ``update(done, text)`` as work completes, ``close()`` at the end.

    Args:
        total: the amount of work (e.g. training steps), > 0.
        label: printed at the start of the line.
        stream: where to write; default ``sys.stderr``.
        enabled: ``None`` (default) writes everywhere; ``False`` writes nothing.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = Progress(200, "lstm T=100", stream=out)
        >>> bar.update(100, "loss 0.5")
        >>> bar.close()
        >>> "lstm T=100" in out.getvalue() and "100/200" in out.getvalue()
        True
    """

    def __init__(self, total: int, label: str = "", *, stream=None, enabled: bool | None = None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled is not False
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self._last_tenth = -1
        self._last_line = ""

    def _line(self, text: str) -> str:
        frac = min(self.done / self.total, 1.0)
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
        eta_text = _duration(eta) if frac > 0 else "?"
        return f"{self.label} [{bar}] {self.done}/{self.total} {_duration(elapsed)} eta {eta_text} {text}".rstrip()

    def update(self, done: int, text: str = "") -> None:
        """Records that ``done`` units of work are complete, with a short status ``text``."""
        self.done = int(done)
        if not self.enabled:
            return
        line = self._line(text)
        self._last_line = line
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
            self.stream.flush()
            return
        tenth = int(10 * self.done / self.total)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self, text: str = "") -> None:
        """Ends the line (prints the final state once if it was not printed yet)."""
        if not self.enabled:
            return
        line = self._line(text) if text or not self._last_line else self._last_line
        if self.tty:
            self.stream.write("\r" + line.ljust(100) + "\n")
        elif line != self._last_line or self._last_tenth < 10:
            self.stream.write(line + "\n")
        self.stream.flush()
