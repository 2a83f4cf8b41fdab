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


def _membership_changed(sender, instance, **kwargs) -> None:
    """A stain technician who joins a center taking part in a study is blinded like the others."""
    from portal.validation.services import blinding_on_membership_change

    if instance.role == "stain_technician":
        blinding_on_membership_change(center_id=instance.center_id)
