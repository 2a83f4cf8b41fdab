import pytest


@pytest.fixture
def training_settings(settings, tmp_path):
    """Worker-local training folders in tmp, and short job timings."""
    settings.TRAINING_WORK_DIR = tmp_path / "training-work"
    # Long enough for a training run under load: the heartbeat thread uses its own connection, which
    # cannot see the rows of a (non-transactional) test, so its first beat would call the job lost.
    settings.JOB_HEARTBEAT_TIMEOUT_SECONDS = 600
    settings.JOB_MAX_ATTEMPTS = 3
    return settings


@pytest.fixture
def reviewed_dataset(cast, storage, training_settings):
    """A dataset version of center A: five reviewed patients (one session each, two images)."""
    from portal.datasets.services import dataset_version_create, training_use_set
    from portal.testing.training import make_session_for, make_synthetic_image, review_image

    sessions = []
    for k in range(5):
        session = make_session_for(cast.a)
        for j in range(2):
            image, dets, fp = make_synthetic_image(session, seed=100 + 2 * k + j)
            review_image(cast.a, image, dets, fp, mistakes=False)
        training_use_set(user=cast.a.admin, session=session, consent=True)
        sessions.append(session)
    return dataset_version_create(user=cast.a.admin, center=cast.a.center, name="clinic", sessions=sessions)
