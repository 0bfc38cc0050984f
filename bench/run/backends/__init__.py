"""Executors behind one protocol (base.py): local processes, Docker Compose."""
