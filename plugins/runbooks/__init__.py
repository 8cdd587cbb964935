"""The MkDocs plugin that turns the runbooks the runner executes into the site a responder reads.

``plugin.py`` holds the MkDocs hooks and nothing else; ``catalog.py`` reads and caches the
runbook files, ``runs.py`` reads run journals, ``render.py`` writes a runbook's page,
``chart.py`` its chart of run durations and ``index.py`` the index page. The plugin imports the
parser and the model, never the runner or the CLI.
"""
