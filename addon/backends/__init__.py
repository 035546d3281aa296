"""Generation backends. `create_backend` is the one place that maps a backend name to its class."""
