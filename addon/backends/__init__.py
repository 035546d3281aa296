"""Generation backends: `base.py` is the interface, `registry.py` maps a name to a backend and to where
its key and endpoint come from, and each provider is one module (`local/` is the embedded engine)."""
