"""What a run looks like afterwards: reports, notebooks, stats, the plan as text."""
