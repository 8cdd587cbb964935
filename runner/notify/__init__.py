"""Outbound notifications: a run needs a person, failed or finished, a gate expired.

`config` reads the service's `notify.yaml` (a runbook's `notify:` names map to webhook targets),
`message` builds each body (Slack-compatible, or signed generic JSON) with deep links to the
console and secrets redacted, and `outbox` keeps them in SQLite until a receiver took them
(retries with exponential backoff that survive a restart; at-least-once, deduplicated by the
receiver on `event_id`). A message never carries an approve link or button: approving happens
in the console, behind its login.
"""
