from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "portal.validation"
    label = "validation"

    def ready(self) -> None:
        from portal.core.home import home_panel_register
        from portal.validation.home import validation_home_panel

        home_panel_register("validation", validation_home_panel)

        from django.db.models.signals import post_delete, post_save

        from portal.centers.models import Membership

        post_save.connect(_membership_changed, sender=Membership, dispatch_uid="validation_blinding_membership_save")
        post_delete.connect(_membership_changed, sender=Membership,
                            dispatch_uid="validation_blinding_membership_delete")
        from portal.validation.models import StainImage
        from portal.validation.services.staining import stain_image_file_on_delete

        post_delete.connect(stain_image_file_on_delete, sender=StainImage, dispatch_uid="validation_stain_image_file")
        from portal.centers.rls import register_scope_source

        register_scope_source(STUDY_CENTERS_SQL)


# Row-level security (portal.centers.rls): a user works with every center of the studies they validate,
# run (a member of the running center) or take part in (a member of a participating center).
STUDY_CENTERS_SQL = """SELECT x.center_id FROM (
        SELECT s.id AS study_id, s.center_id FROM validation_study s
        UNION ALL SELECT sc.study_id, sc.center_id FROM validation_study_centers sc) AS x
    WHERE x.study_id IN (
        SELECT v.study_id FROM validation_studyvalidator v WHERE v.user_id = %(user_id)d
        UNION SELECT s.id FROM validation_study s
            JOIN centers_membership m ON m.center_id = s.center_id WHERE m.user_id = %(user_id)d
        UNION SELECT sc.study_id FROM validation_study_centers sc
            JOIN centers_membership m ON m.center_id = sc.center_id WHERE m.user_id = %(user_id)d)"""


def _membership_changed(sender, instance, **kwargs) -> None:
    """A stain technician who joins a center taking part in a study is blinded like the others."""
    from portal.validation.services import blinding_on_membership_change

    if instance.role == "stain_technician":
        blinding_on_membership_change(center_id=instance.center_id)
