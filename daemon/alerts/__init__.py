"""Alerts: their model and lifecycle, the SQLite store, routing, escalation and delivery."""
