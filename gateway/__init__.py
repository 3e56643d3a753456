"""Floorbell's edges: HTTP API, SSE gateway, workers and their adapters."""
