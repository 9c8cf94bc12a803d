"""Schema registry errors, shared by its client, its stand-in, the gateway and the sink."""

from __future__ import annotations


class RegistryError(Exception):
    """An error answer of a schema registry: an HTTP status and Confluent's error body.

    The stand-in raises it to answer `{"error_code", "message"}` with `http_status`;
    the client raises it when a registry (ours or Confluent's) answers that way.
    """

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(f"schema registry answered {http_status}: {message}")
        self.http_status = http_status
        self.error_code = error_code
        self.message = message


class RegistryUnavailable(RuntimeError):
    """The schema registry could not be reached or could not answer; try again later."""
