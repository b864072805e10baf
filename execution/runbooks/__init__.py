"""Runbooks (docs/runbooks.md): saved, versioned plan templates with typed parameters that
people launch; every launch renders a plan and submits it through ``execution_submit``."""
