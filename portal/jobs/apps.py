from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "portal.jobs"
    label = "jobs"

    def ready(self) -> None:
        from portal.imaging.signals import images_stored
        from portal.jobs.services import jobs_on_images_stored

        images_stored.connect(jobs_on_images_stored, dispatch_uid="jobs_on_images_stored")
