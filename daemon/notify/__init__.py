"""Delivering alerts: a durable outbox and one notifier module per kind of receiver."""
