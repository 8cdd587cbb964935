"""Markdown to the typed plan, on markdown-it-py."""
