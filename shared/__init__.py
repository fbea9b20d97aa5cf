"""What every Switchboard service shares: the conversation event, settings, bus and store interfaces, logging."""
