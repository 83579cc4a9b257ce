"""Moved to ``runtime.config``; this name stays for code written against it."""

from runtime.config import *  # noqa: F403
from runtime.config import (  # noqa: F401
    BAD_INPUT,
    DEBUG_FLAG,
    EXIT_BAD_INPUT,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    ConfigError,
    build,
    config_differences,
    config_from_checkpoint,
    entry_point,
    error_line,
    flatten,
    help_text,
    load_yaml,
    param,
    parse_config,
    preset_names,
    resolve,
    to_dict,
    train_command,
)
