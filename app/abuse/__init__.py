"""Limits against abuse: event floods, per-IP connections and session creation."""
