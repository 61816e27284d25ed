"""Anti-cheat: signed tokens, proof of work, rate limits."""
