"""secops-runbooks: runbooks that are both the responder's documentation and the response program."""

__version__ = "0.1.0"
