"""Step runners (docs/contract.md#steps): one module per step type, registered in registry.py."""
