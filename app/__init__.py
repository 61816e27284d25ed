"""Live Scoreboard: a real-time game backend (aiohttp + python-socketio)."""
