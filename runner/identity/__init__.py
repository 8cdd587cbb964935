"""Who is deciding: the service's users (passwords and API tokens, stored hashed in SQLite),
the runbook roles they hold (a roles file under version control), and the authenticated
identity every decision made through the service carries."""
