"""Monitoring services: readiness checks, the release checklist, SLA violation detection."""
