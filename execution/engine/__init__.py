"""The engine: runs an execution's steps with a lease, locks, timeouts and cancellation.

- ``watch.py``: the heartbeat thread of a running execution (lease, locks, cancel, timeout);
- ``steps.py``: one step through its runner, with secrets, masking and events;
- ``run.py``: one attempt of an execution from claim to outcome;
- ``worker.py``: the drain loop a django-q2 task runs, and the worker heartbeat.
"""
