"""Actions: the catalogue of what a player can do, and the start/complete service."""
