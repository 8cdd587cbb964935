"""The response service: alerts in, runs out, on Temporal (`runbook serve`, `runbook worker`).

``devserver`` starts the embedded Temporal dev server; ``messages`` holds what crosses
Temporal's boundary (plain dataclasses, safe in the workflow sandbox); ``workflow`` is one
durable workflow per run, which waits at a gate for a decision; ``activities`` run the steps
through the same session, engine and policies as `runbook run`; ``intake`` turns a payload into
routed alerts and started workflows; ``serve`` puts the intake, a worker and the server together.
"""
