"""Dagster's console log for in-process runs, without its failure tracebacks.

A failed run is said in one line (RunFailed); its full log stays in the run's event log and the UI.
"""

from __future__ import annotations

import logging

import dagster as dg

class _QuietConsole(logging.Filter):
    """Dagster's console log without its failure records (each a traceback, repeated per step and for
    the run): the caller says a failure in one line, and the full log stays in the run's event log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def quiet_console_logger(stream) -> dg.LoggerDefinition:
    """Dagster's console logger (same format and levels) writing progress to `stream`, failures nowhere: a
    failed run is one line (RunFailed). The CLI passes stdout, so stderr holds that line and nothing else."""
    import coloredlogs
    from dagster._core.utils import coerce_valid_log_level
    from dagster._loggers import colored_console_logger
    from dagster._utils.log import default_date_format_string, default_format_string

    def make(init_context):
        level = coerce_valid_log_level(init_context.logger_config["log_level"])
        logger = logging.getLoggerClass()(init_context.logger_config["name"], level=level)
        coloredlogs.install(logger=logger, level=level, stream=stream, fmt=default_format_string(),
                            datefmt=default_date_format_string(),
                            field_styles={"levelname": {"color": "blue"}, "asctime": {"color": "green"}},
                            level_styles={"debug": {}, "error": {"color": "red"}})
        for handler in logger.handlers:
            handler.addFilter(_QuietConsole())
        return logger

    return dg.LoggerDefinition(make, config_schema=colored_console_logger.config_schema,
                               description="Dagster's console logger without failure tracebacks")
