"""Runs: the journal's typed events, the run store that alone writes them, and the one fold
from events to a run's state. See docs/architecture.md."""
