"""Read models: what the API's read routes show, straight from SQL, never through the domain."""
