"""The runbook format: its vocabulary, the typed model, `when=` conditions, input values."""
