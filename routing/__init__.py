"""Skill-based routing of callers to agents."""
