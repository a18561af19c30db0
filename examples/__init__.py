"""Example agents. Run one with ``lmthing run examples/<name>.py``."""
