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

        register_scope_source(study_centers_sql())


# Row-level security (portal.centers.rls): the other centers a user works with through validation studies,
# no more than portal.validation.access grants (the roles come from the policy table):
# - a study's validators, once it is past draft (``validation.validate``, ``validation.report``), and whoever
#   may run it (``validation.manage`` in the running center): every center of the study;
# - stain technicians of a participating center past draft (``validation.stain``) and pickers of a
#   participating center in a draft study they do not validate (``validation.pick``): the running center
#   only (the study, its fields, picks and stain images are filed under it; the cells and images they
#   work on are their own center's).
# Other members of a participating or running center (a reviewer, an uploader of an open study) get nothing.
def study_centers_sql() -> str:
    """The scope source (``register_scope_source``): centers a user works with through validation studies."""
    from portal.centers.policy import Action, roles_for
    from portal.validation.models import StudyStatus

    def literal(value: str) -> str:  # code constants (roles of the policy table, a status), never user input
        if not value.isidentifier():
            raise ValueError(f"not a plain name: {value!r}")
        return f"'{value}'"

    def roles(action: Action) -> str:
        return ", ".join(literal(name) for name in roles_for(action)) or "NULL"  # no role: nobody

    draft = literal(StudyStatus.DRAFT.value)
    return f"""SELECT x.center_id FROM (
            SELECT s.id AS study_id, s.center_id FROM validation_study s
            UNION ALL SELECT sc.study_id, sc.center_id FROM validation_study_centers sc) AS x
        WHERE x.study_id IN (
            SELECT v.study_id FROM validation_studyvalidator v JOIN validation_study s ON s.id = v.study_id
                WHERE v.user_id = %(user_id)d AND s.status <> {draft}
            UNION SELECT s.id FROM validation_study s JOIN centers_membership m ON m.center_id = s.center_id
                WHERE m.user_id = %(user_id)d AND m.role IN ({roles(Action.VALIDATION_MANAGE)}))
    UNION SELECT s.center_id FROM validation_study s
        JOIN validation_study_centers sc ON sc.study_id = s.id
        JOIN centers_membership m ON m.center_id = sc.center_id
        WHERE m.user_id = %(user_id)d AND (
            (s.status <> {draft} AND m.role IN ({roles(Action.VALIDATION_STAIN)}))
            OR (s.status = {draft} AND m.role IN ({roles(Action.VALIDATION_PICK)}) AND NOT EXISTS (
                SELECT 1 FROM validation_studyvalidator v WHERE v.study_id = s.id AND v.user_id = %(user_id)d)))"""


def _membership_changed(sender, instance, **kwargs) -> None:
    """A stain technician who joins a center taking part in a study is blinded like the others."""
    from portal.validation.services import blinding_on_membership_change

    if instance.role == "stain_technician":
        blinding_on_membership_change(center_id=instance.center_id)
