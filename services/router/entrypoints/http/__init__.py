"""The HTTP API: ``app.create_app`` and one router module per resource; routes parse, authorize, call a handler
or a view, and shape the answer."""
