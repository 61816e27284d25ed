"""Tournaments (PROTOCOL.md 10): boards with a start, an end and their own entrants."""
