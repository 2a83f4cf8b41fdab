from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "portal.review"
    label = "review"

    def ready(self) -> None:
        from portal.core.home import home_panel_register
        from portal.review.home import review_home_panel

        home_panel_register("review", review_home_panel)
