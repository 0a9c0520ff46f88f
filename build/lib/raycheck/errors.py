"""The one error of bad input, shared by every reader of user files and options."""


class ConfigError(Exception):
    """Bad input: one line that names where (file, line, key or option) and what is wrong.

    The plugin and the commands turn it into exit status 4 before anything runs or is written."""
