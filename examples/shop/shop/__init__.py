"""A small shop service: the example of a team's own app measured by the stack (see ../../README.md and docs/own-app.md)."""
