"""Console-script shims: the command line itself is parsed in Rust (clap)."""

import sys

from . import _native


def ct_record():
    """``ct-record``: record a Python program (see ``ct-record --help``)."""
    sys.exit(_native.main(["ct-record"] + sys.argv[1:]))


def ct_rollout():
    """``ct-rollout``: rollout reports and gates (see ``ct-rollout --help``)."""
    sys.exit(_native.rollout_main(["ct-rollout"] + sys.argv[1:]))
