"""What the CLI tests share."""

import pytest


@pytest.fixture
def one_error_line(capsys):
    """Check that the command refused its input in one `weightinit: error:` line on stderr that
    contains `message`, and printed nothing on stdout."""

    def check(message):
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("weightinit: error:"), captured.err
        assert message in lines[0]
        assert captured.out == ""

    return check
