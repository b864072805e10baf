"""``opsctl`` and the typed REST client it is built on (docs/cli.md).

This package speaks HTTP and WebSocket only: it imports nothing from Django or the rest of
the product, so a pipeline or a laptop can install and import it without a database.
"""
