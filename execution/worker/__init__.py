"""The worker runtime: everything that runs inside a django-q2 worker process
(docs/contract.md#queue-and-workers, docs/contract.md#steps, docs/contract.md#cancellation).

- ``store.py``: the hot path's SQL, one function per statement (claim with context, start,
  step boundary, finish, hand back, heartbeat);
- ``attempt.py``: one attempt of an execution, from its claim to its outcome;
- ``steps.py``: one step through its runner (secrets, timeout, masking);
- ``watch.py``: the per-process watcher thread (cancel, timeout, lease heartbeat);
- ``runtime.py``: the drain loop a django-q2 task runs, and the worker heartbeat.
"""
