"""Errors shared by the flows."""


class RuleError(ValueError):
    """A message a rule cannot apply (e.g. a malformed order); it goes to the dead letters."""
