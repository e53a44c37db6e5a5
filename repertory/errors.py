"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class ConfigError(ValueError):
  """Bad user input: the message says what is wrong and what to do."""
