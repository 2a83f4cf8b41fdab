"""The WSGI entry of ``bench_api.py``'s servers: the portal's own application, and with
``BENCH_UNAUDITED=1`` the audit call of image reads switched off (to measure what the audit costs)."""
import os

from portal.wsgi import application  # noqa: F401  (configures Django)

if os.environ.get("BENCH_UNAUDITED") == "1":
    from portal.imaging import services

    def _not_audited(**_kwargs) -> None:
        return None

    services.image_data_read_record = _not_audited
