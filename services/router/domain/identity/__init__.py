"""Identity: one person is one key whatever channel wrote to us (normalizing), and one customer (the graph)."""
