"""Routing: which queue a conversation joins, which agent gets it and when (rules, hours, strategies)."""
