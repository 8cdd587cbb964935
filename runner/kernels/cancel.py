"""Ctrl-C and SIGTERM as a flag the runner polls, never as an exception raised just anywhere.

Python turns SIGINT into a KeyboardInterrupt at whatever bytecode the main thread is on. Inside
jupyter_client that may be its event loop starting a kernel, which swallows it: the run then
went on, and a 30 s step ran to its end. While the runner waits on a kernel (starting it or
running a block) the handlers here only set the token; the wait loops see it within one poll
interval and interrupt the block themselves. Anywhere else (a prompt, a pause between steps)
there is no loop to poll, so the handlers raise as Python would.

Levels, as the operator sees them: the first Ctrl-C interrupts the step; a second one while the
kernel is still settling stops waiting, restarts the kernel and cancels the step; a third one
(or SIGTERM) ends the run. ``on_press`` is told of each press as it happens, so a person whose
step ignores the first one sees that it was heard and what the next press does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind like Ctrl-C so every ``finally`` (kernel shutdown) runs."""


class CancelToken:
    """Set by a signal (or another thread), read by the loops that wait on kernels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.presses = 0  # Ctrl-Cs not yet acted on
        self.terminated = False  # SIGTERM: end the run
        self._waiting = 0  # > 0 while a loop polls the token
        # Called (in the main thread, from the handler) with the presses so far: feedback.
        self.on_press: Callable[[int], None] | None = None

    def cancel(self, *, terminate: bool = False) -> None:
        with self._lock:
            self.presses += 1
            self.terminated = self.terminated or terminate

    @property
    def requested(self) -> bool:
        return self.presses > 0 or self.terminated

    def take(self) -> int:
        """The presses so far, consumed: the step they interrupted has been dealt with."""
        with self._lock:
            presses, self.presses = self.presses, 0
            return presses

    @contextlib.contextmanager
    def polled(self) -> Iterator[None]:
        """While active, a signal sets the token instead of raising."""
        with self._lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1

    @property
    def polling(self) -> bool:
        return self._waiting > 0

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        """Install the SIGINT and SIGTERM handlers (main thread only; elsewhere a no-op)."""
        try:
            previous_int = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: signals are the main thread's business
            yield
            return
        previous_term = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.polling:
            self.cancel(terminate=self.presses >= 2)  # the third press ends the run
            if self.on_press is not None:
                self.on_press(self.presses)
            return
        raise KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.polling:
            self.cancel(terminate=True)
            return
        raise Terminated("terminated by SIGTERM")
