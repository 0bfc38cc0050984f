"""Bad input is reported as one line and exit code 2, before anything starts."""


class BadInput(Exception):
    """A scenario, option or value the runner refuses; str(exc) is the whole message."""
