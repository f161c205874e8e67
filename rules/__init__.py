"""The rules engine, its clock and schedules, the built-in rules and the custom-rule API."""
