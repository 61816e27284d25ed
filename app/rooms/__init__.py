"""Rooms: names, who may watch what, and membership on connect."""
