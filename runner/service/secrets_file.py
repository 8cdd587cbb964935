"""Secret inputs for triggered runs from a file only the service's user can read.

`runbook serve --secrets FILE`: a YAML or JSON mapping of input names to values, e.g.
``api_token: ...``. The file must be a regular file (no link), owned by the user the service
runs as, and readable by nobody else (mode 0600 or 0400): otherwise the service refuses to
start, naming the file and the fix. Values given in the environment (`RUNBOOK_INPUT_<NAME>`)
win over the file's. The values are never logged, journaled or shown.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

import yaml

from runner.errors import UsageError
from runner.private_files import UnsafeFile, open_regular

MAX_BYTES = 1 << 20


def load_secrets(path: Path) -> dict[str, str]:
    try:
        fd = open_regular(path)
    except (OSError, UnsafeFile) as exc:
        raise UsageError(f"cannot read the secrets file: {exc}", path=str(path)) from None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            raise UsageError(
                "the secrets file belongs to another user; it must be the service's own",
                path=str(path),
            )
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"the secrets file is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                f"chmod 600 {path}",
                path=str(path),
            )
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise UsageError("the secrets file is over 1 MiB", path=str(path))
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        # Not the parser's message: it may quote the line, and the line holds a secret.
        raise UsageError("the secrets file is not valid YAML or JSON", path=str(path)) from None
    if not isinstance(loaded, Mapping) or not all(isinstance(k, str) for k in loaded):
        raise UsageError("the secrets file must map input names to values", path=str(path))
    return {k: str(v) for k, v in loaded.items() if v is not None}
