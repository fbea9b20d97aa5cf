"""Handlers: one job a module. Each takes an event or a command, loads what it needs through the unit of work,
asks the domain, saves, and publishes through the outbox. No HTTP here, and no SQL."""
