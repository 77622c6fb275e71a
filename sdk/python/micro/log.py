"""Lines for the node's log, tagged with the service."""

from wit_world.imports import logging as _logging


def debug(message: str) -> None:
    _logging.log(_logging.Level.DEBUG, message)


def info(message: str) -> None:
    _logging.log(_logging.Level.INFO, message)


def warn(message: str) -> None:
    _logging.log(_logging.Level.WARN, message)


def error(message: str) -> None:
    _logging.log(_logging.Level.ERROR, message)
