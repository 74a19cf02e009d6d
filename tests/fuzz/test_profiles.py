"""The fuzz suite's hypothesis profiles: registered, and the one in use is the one asked for
(``--hypothesis-profile``; "default" without it), never overridden by a conftest."""

from hypothesis import settings


def test_the_profile_asked_for_is_the_one_in_use(request):
    asked = request.config.getoption("--hypothesis-profile")
    if asked:
        assert settings.get_current_profile_name() == asked
    else:  # hypothesis itself chooses "ci" when the CI environment variable is set
        assert settings.get_current_profile_name() in ("default", "ci")


def test_ci_runs_the_default_suite():
    ci, default = settings.get_profile("ci"), settings.get_profile("default")
    assert (ci.max_examples, ci.derandomize, ci.database, ci.deadline) == (
        default.max_examples, default.derandomize, default.database, default.deadline)


def test_default_is_deterministic_and_writes_no_database():
    default = settings.get_profile("default")
    assert default.derandomize and default.database is None and default.deadline is None
    assert 20 <= default.max_examples <= 100  # keeps the suite under a minute on 2 cores


def test_long_runs_thousands_of_examples():
    long = settings.get_profile("long")
    assert long.max_examples >= 1000 and long.database is None and long.deadline is None
