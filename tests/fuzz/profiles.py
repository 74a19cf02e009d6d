"""The hypothesis profiles of the fuzz suite, registered when this module is imported.

"default" (what a plain ``pytest`` run gets; "ci", which hypothesis chooses itself when CI is
set, is the same): few examples per test, deterministic (the same
examples on every run, so CI never flakes), no example database written to disk, no deadline
(a first call compiles numba kernels). "long": thousands of examples, random, for a deeper run
by hand: ``pytest tests/fuzz --hypothesis-profile=long``.

Nothing here calls ``settings.load_profile``: the hypothesis pytest plugin loads the profile
named by ``--hypothesis-profile`` (or keeps "default"), and a load here would override it.
Registering "default" while it is the active profile updates it in place (hypothesis's rule),
so a plain run gets these settings without a load.

The plugin loads the profile in ``pytest_configure``, before it collects the folders that were
not named on the command line: ``--hypothesis-profile=long`` finds "long" registered when
tests/fuzz (or a file in it) is named, because pytest imports the conftest of every named path
first. For a whole-suite run with the long profile, tests/conftest.py must register this module.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_DEFAULT = {"max_examples": 40, "deadline": None, "derandomize": True, "database": None,
            "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", **_DEFAULT)
# hypothesis picks its built-in "ci" profile by itself when the CI environment variable is set
# (as .ci/run's machine does): the same settings there, so CI runs exactly the default suite.
settings.register_profile("ci", **_DEFAULT)
settings.register_profile(
    "long",
    max_examples=3000,
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
