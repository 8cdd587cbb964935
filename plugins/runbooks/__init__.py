"""The MkDocs plugin that turns the runbooks the runner executes into the site a responder reads.

``hooks.py`` holds the plugin class and its MkDocs hooks and nothing else; ``config.py`` its
options; ``catalog.py`` reads and caches the runbook files; ``page.py`` assembles a runbook's
page from ``cards.py`` (the header band, details, Run-it box), ``steps.py`` (steps, sections,
procedures) and ``runs.py`` (run journals, the runs table and the duration chart drawn by
``runner.reports.chart``); ``index.py`` writes the index page; ``markup.py`` holds what they
share. The plugin imports the parser, the model and the chart, never the runner's execution or
the CLI.
"""
