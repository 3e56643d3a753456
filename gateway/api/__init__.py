"""HTTP routes: each handler parses, calls one service, and shapes the answer."""
