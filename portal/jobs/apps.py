from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "portal.jobs"
    label = "jobs"

    def ready(self) -> None:
        from portal.core.home import home_panel_register
        from portal.jobs.home import jobs_home_panel

        home_panel_register("jobs", jobs_home_panel)

        from portal.imaging.signals import images_stored
        from portal.jobs.services import jobs_on_images_stored

        images_stored.connect(jobs_on_images_stored, dispatch_uid="jobs_on_images_stored")

        from portal.jobs.receivers import notify_job_finished
        from portal.jobs.signals import job_finished

        job_finished.connect(notify_job_finished, dispatch_uid="jobs_notify_job_finished")
