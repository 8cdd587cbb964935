"""Drills: scenarios against the lab, and their operator."""
