"""Step runners (§7): one module per step type, registered in registry.py."""
