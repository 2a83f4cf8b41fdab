"""The one policy for ``../shared/fixtures``: found beside the repository, skipped with the reason in a
developer's clone without it, a failure in CI."""
from __future__ import annotations

import pytest

from portal.testing.shared import ENV_OVERRIDE, REPO, running_in_ci, shared_fixtures_dir


def test_shared_fixtures_are_looked_for_beside_the_repository(tmp_path):
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    assert shared_fixtures_dir(environ={}, root=tmp_path / "clone") == tmp_path / "shared" / "fixtures"


def test_the_repository_root_is_where_manage_py_is():
    assert (REPO / "manage.py").is_file()


def test_a_clone_without_shared_fixtures_skips_with_the_reason(tmp_path):
    with pytest.raises(pytest.skip.Exception, match="external fixtures missing: .*shared/fixtures"):
        shared_fixtures_dir(environ={}, root=tmp_path / "clone")


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_missing_shared_fixtures_fail_in_ci(tmp_path, value):
    with pytest.raises(pytest.fail.Exception, match="CI must run these tests"):
        shared_fixtures_dir(environ={"CI": value}, root=tmp_path / "clone")


def test_the_environment_override_names_another_place(tmp_path):
    assert shared_fixtures_dir(environ={ENV_OVERRIDE: str(tmp_path)}, root=tmp_path / "clone") == tmp_path
    with pytest.raises(pytest.skip.Exception, match="absent"):
        shared_fixtures_dir(environ={ENV_OVERRIDE: str(tmp_path / "absent")})


def test_ci_is_recognised_only_when_set_to_a_true_value():
    assert running_in_ci({"CI": "true"}) and running_in_ci({"CI": "YES"})
    assert not running_in_ci({}) and not running_in_ci({"CI": "false"}) and not running_in_ci({"CI": ""})
