"""MQTT input: one connection for the daemon, one codec per controller format."""
