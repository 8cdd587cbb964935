"""`runbook run` reads its plan once: one parse of the file and one parse of each `when=`; the
engine, the linter and the printed plan all use what the parser made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from runner_helpers import write_book

import runner.format.expr
import runner.parse.markdown
from runner.cli import cli

STEPS = """\
### 1. Look
Role: lead

```bash {id=look when="severity == 'high'"}
echo looked
```

### 2. Act
Role: lead

```bash {id=act when="severity in ['high', 'critical']"}
echo acted
```
"""
INPUTS = """\
severity:
  type: string
  default: high
"""


def test_run_parses_the_file_once_and_each_condition_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = write_book(tmp_path, STEPS, INPUTS)
    parses: list[str] = []
    conditions: list[str] = []
    real_parse = runner.parse.markdown._Parser.parse
    real_init = runner.format.expr.Expression.__init__

    def counting_parse(self: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(str(self.path))
        return real_parse(self, *args, **kwargs)

    def counting_init(self: Any, source: str) -> None:
        conditions.append(source)
        real_init(self, source)

    monkeypatch.setattr(runner.parse.markdown._Parser, "parse", counting_parse)
    monkeypatch.setattr(runner.format.expr.Expression, "__init__", counting_init)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["run", str(book), "--yes", "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 0, result.output
    assert "acted" in result.output
    assert parses == [str(book)]
    assert sorted(conditions) == sorted(["severity == 'high'", "severity in ['high', 'critical']"])
