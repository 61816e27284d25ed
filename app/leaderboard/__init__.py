"""Leaderboards: the Redis read model (sorted sets per board and period) and its updates."""
