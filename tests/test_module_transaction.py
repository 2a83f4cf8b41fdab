"""``module_transaction`` (root conftest): data made once per module is seen by every test of the
module, and each test's writes are still undone after it. The tests run in file order."""
from __future__ import annotations

import pytest

from portal.centers.models import Center


@pytest.fixture(scope="module")
def shared_center(module_transaction):
    from portal.centers.services import center_create

    with module_transaction.unblock():
        return center_create(code="MT1", name="Made once")


def test_a_test_sees_the_module_data_and_writes_its_own(shared_center, db):
    assert Center.objects.filter(pk=shared_center.pk).exists()
    Center.objects.create(code="MT2", name="Written by a test")
    shared_center.name = "Renamed by a test"
    shared_center.save()


def test_the_next_test_sees_the_module_data_as_made_and_not_the_writes_of_the_last(shared_center, db):
    assert Center.objects.get(pk=shared_center.pk).name == "Made once"
    assert not Center.objects.filter(code="MT2").exists()


def test_the_module_cast_is_there_for_every_test(module_cast, db):
    assert Center.objects.filter(pk__in=[module_cast.a.center.pk, module_cast.b.center.pk]).count() == 2
