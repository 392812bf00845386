"""Console-script shims: the command line itself is parsed in Rust (clap)."""

import sys

from . import _native


def ct_record():
    """``ct-record``: record a Python program (see ``ct-record --help``)."""
    sys.exit(_native.main(["ct-record"] + sys.argv[1:]))
