"""secops-runbooks: runbooks that are the responder's documentation and the response program."""

__version__ = "0.1.0"
