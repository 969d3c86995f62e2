"""Graduation: constitutional rules, readiness from episodes, the exam, and gated promotion."""
