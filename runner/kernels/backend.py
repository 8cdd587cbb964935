"""What the engine needs from kernels, as protocols: the local pool (:mod:`runner.kernels.pool`)
is the first implementation; a worker's warm pool or a remote backend can be a second without
the engine changing.

The engine asks the backend for a kernel by kernelspec name, runs code in it, and watches its
``generation`` (bumped at every start or restart) to know when the run's values must be given
again. Process hygiene (the reaper, stale folders, killing what a kernel left behind) stays
behind the protocol, in the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from runner.kernels.cancel import CancelToken
    from runner.kernels.pool import ExecResult, KernelInfo, Output


class Kernel(Protocol):
    """One running kernel of a run."""

    name: str  # the kernelspec name
    info: KernelInfo | None  # what it said about itself once ready
    generation: int  # incremented at each (re)start
    cancel: CancelToken | None  # polled while waiting on the kernel

    def alive(self) -> bool: ...

    def cwd(self) -> str | None: ...

    def background(self) -> list[tuple[int, str]]: ...

    def interrupt(self) -> None: ...

    def restart(self) -> KernelInfo: ...

    def execute(
        self,
        code: str,
        *,
        on_output: Callable[[Output], None] | None = None,
        timeout: float | None = None,
        expressions: Mapping[str, str] | None = None,
        silent: bool = False,
        errexit: bool = True,
    ) -> ExecResult: ...


class KernelBackend(Protocol):
    """The kernels of one run, by kernelspec name."""

    cancel: CancelToken | None  # handed to every kernel
    on_start: Callable[[Kernel], None] | None  # after each (re)start: give the values again

    def prestart(self, names: Iterable[str]) -> None: ...

    def get(self, name: str) -> Kernel: ...

    def running(self) -> Sequence[Kernel]: ...

    def sessions(self) -> Sequence[Kernel]: ...

    def shutdown(self) -> None: ...
