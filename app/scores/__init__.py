"""Scores: MongoDB as the source of truth (players, action log, totals, achievements)."""
