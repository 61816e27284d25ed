"""Players: sessions (who you are) and profiles (what you have done)."""
