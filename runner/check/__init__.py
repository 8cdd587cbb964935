"""`runbook check`: the linter's rules over the typed plan."""
