"""``python -m ct_recorder``: the same command as ``ct-record``."""

from .cli import ct_record

ct_record()
