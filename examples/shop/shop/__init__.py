"""A small shop service: the example of a team's own app measured by the stack (docs/own-app.md)."""
