"""Django settings, read from the environment.

Defaults give a working local demo: SQLite in ``var/``, an embedded filesystem Celery broker, media in
``var/media`` and a secret key generated into ``var/secret_key`` on first run. Production sets
``DATABASE_URL``, ``CELERY_BROKER_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``AUDIT_HMAC_KEY`` and
``PORTAL_HTTPS=1`` (secure cookies, HSTS, SSL redirect); ``manage.py check --deploy`` is then clean.
"""
from __future__ import annotations

import re
import secrets
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.lib.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once into var/secret_key (never committed)."""
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal.core",
    "portal.accounts",
    "portal.centers",
    "portal.audit",
    "portal.imaging",
    "portal.mlmodels",
    "portal.results",
    "portal.jobs",
    "portal.review",
    "portal.validation",
    "portal.datasets",
    "portal.training",
    "portal.ops",
]

MIDDLEWARE = [
    "portal.ops.metrics.RequestMetricsMiddleware",
    "portal.core.middleware.RequestIdMiddleware",
    "portal.core.middleware.TranslationResetMiddleware",  # outermost: no language leaks past a request
    "django.middleware.security.SecurityMiddleware",
    "portal.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # language cookie, else Accept-Language, else en
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.centers.rls.CenterScopeMiddleware",  # PostgreSQL row-level security: the user's centers
    "django_otp.middleware.OTPMiddleware",
    "portal.accounts.middleware.UserLanguageMiddleware",  # the language a signed-in user chose
    "portal.centers.middleware.CenterTimeZoneMiddleware",  # the center's time zone (see the module)
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.accounts.middleware.OTPRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into portal.accounts.lockout's answer
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.context_processors.roles",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
except Exception as exc:  # dj_database_url raises several types
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the worker write at once; IMMEDIATE transactions
    # take the write lock up front instead of failing on upgrade.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    # A file, not memory, so that worker processes started by tests see the test database.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
DATABASES = {"default": _db}
# PostgreSQL row-level security by center (portal/centers/rls.py): requests and tasks set their centers.
# The app should connect as a role that is neither owner nor superuser (README, "Row-level security").
DATABASE_RLS = env_bool("DATABASE_RLS", True)
# Optional: each request/task scope also SETs ROLE to this non-privileged role (tests, one-login setups).
DATABASE_SCOPE_ROLE = env_str("DATABASE_SCOPE_ROLE", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth and sessions ----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)  # idle timeout
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Every password check (login page, admin login, e-signature, password change) goes through
# authenticate(request=...), which django-axes counts. A lockout holds for one username *from one
# address*, so guesses from elsewhere cannot lock a user out of their own workstation.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_MAX_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successes are in the audit trail
AXES_VERBOSE = False  # failures and lockouts are in the audit trail
AXES_CLIENT_IP_CALLABLE = "portal.accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "portal.accounts.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Two-factor authentication (django-otp): required for center admins, validators, auditors and staff.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "spermatid-portal")
OTP_BACKUP_CODES = 10
# Password reset mails: SMTP when EMAIL_HOST is set, else printed on the console (demo).
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "spermatid-portal <noreply@localhost>")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600)

# --- security headers -----------------------------------------------------------------------------
PORTAL_HTTPS = env_bool("PORTAL_HTTPS", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = PORTAL_HTTPS
CSRF_COOKIE_SECURE = PORTAL_HTTPS
SECURE_SSL_REDIRECT = PORTAL_HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if PORTAL_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PORTAL_HTTPS
SECURE_HSTS_PRELOAD = PORTAL_HTTPS
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

# --- i18n / static / media ------------------------------------------------------------------------
# English and Simplified Chinese. Catalogs in locale/ (django and djangojs domains); the .mo files are
# committed, so a run needs no gettext tools (`manage.py i18n_check` explains how to update them).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"  # storage and machine exports; people see their center's zone (portal.centers.timezones)
USE_I18N = True
USE_TZ = True
LANGUAGE_COOKIE_NAME = "portal_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PORTAL_HTTPS
LANGUAGE_COOKIE_HTTPONLY = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Media (images, display views, thumbnails, model bundles) through the storage API only: local disk by
# default, an S3-compatible bucket (django-storages) when AWS_STORAGE_BUCKET_NAME is set. The bucket is
# private: files reach browsers only through the portal's authenticated, audited views.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "") or ""
MEDIA_STORAGE_S3 = {
    "bucket_name": AWS_STORAGE_BUCKET_NAME,
    "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
    "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
    "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
    "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
    "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", "path"),
    "signature_version": "s3v4",
    "default_acl": None,  # objects inherit the bucket's (private) policy
    "querystring_auth": True,  # any URL the storage makes is presigned and short-lived
    "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 300),
    "file_overwrite": False,
    "max_memory_size": 16 * 1024 * 1024,  # larger files read from the bucket spool to a temporary file
    "location": env_str("AWS_LOCATION", "") or "",  # a folder of the bucket (several portals share one)
}
STORAGES = {
    "default": ({"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": MEDIA_STORAGE_S3}
                if AWS_STORAGE_BUCKET_NAME else {"BACKEND": "django.core.files.storage.FileSystemStorage"}),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from static/ when collectstatic has not run
# Workers read media through a bounded local cache (LRU by size; model bundles per weights sha256).
MEDIA_CACHE_DIR = Path(env_str("MEDIA_CACHE_DIR", str(VAR_DIR / "media-cache")))
MEDIA_CACHE_MAX_BYTES = env_int("MEDIA_CACHE_MAX_BYTES", 2 * 1024**3)
MEDIA_CACHE_MAX_BUNDLES = env_int("MEDIA_CACHE_MAX_BUNDLES", 4)  # model bundles kept per host (least recently used go)
MEDIA_URL = "/media-not-served/"  # media is served only through authenticated views
FILE_UPLOAD_PERMISSIONS = 0o640
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- uploads (portal/imaging) ---------------------------------------------------------------------
UPLOAD_MAX_FILE_BYTES = env_int("UPLOAD_MAX_FILE_BYTES", 200 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 100_000_000)
UPLOAD_MAX_PAGES = env_int("UPLOAD_MAX_PAGES", 64)
UPLOAD_MAX_FILES = env_int("UPLOAD_MAX_FILES", 50)
UPLOAD_MIN_SIDE_PX = env_int("UPLOAD_MIN_SIDE_PX", 32)
UM_PER_PX_MIN = env_float("UM_PER_PX_MIN", 0.02)
UM_PER_PX_MAX = env_float("UM_PER_PX_MAX", 5.0)
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES

# --- audit ----------------------------------------------------------------------------------------
# The HMAC key for the audit chain must live outside the database. Unset: a key generated into var/.
AUDIT_HMAC_KEY = env_str("AUDIT_HMAC_KEY") or ""
AUDIT_CHECKPOINT_PATH = Path(env_str("AUDIT_CHECKPOINT_PATH", str(VAR_DIR / "audit_checkpoint.json")))
# A copy of the checkpoint is published to the media storage as audit/checkpoints/<name>.json, one object
# per host (so verify_audit on any host also sees what the others checkpointed): the name must differ per
# host. Published after a checkpoint write at most once per AUDIT_CHECKPOINT_PUBLISH_SECONDS per process,
# and by every run of the beat task audit_fold_pending.
AUDIT_CHECKPOINT_NAME = (env_str("AUDIT_CHECKPOINT_NAME", "")
                         or re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._")[:100] or "host")
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", AUDIT_CHECKPOINT_NAME):
    raise ImproperlyConfigured("AUDIT_CHECKPOINT_NAME must be 1-100 letters, digits, '.', '_' or '-' "
                               f"(starting with a letter or digit), not {AUDIT_CHECKPOINT_NAME!r}")
AUDIT_CHECKPOINT_PUBLISH_SECONDS = env_float("AUDIT_CHECKPOINT_PUBLISH_SECONDS", 2.0)
# A read of image data records a pending event; every Nth one (by id) then tries to chain the pending
# events without waiting (portal/audit/services.py). The beat task, writes and the audit pages fold too.
AUDIT_READ_FOLD_EVERY = env_int("AUDIT_READ_FOLD_EVERY", 20)

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF takes the WWW-Authenticate challenge from the first class, so missing or invalid
    # credentials answer 401 (not 403). Session authentication (browser pages) still enforces CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (uploads declare multipart themselves): form encodings cannot carry null,
    # numbers or nested lists, so the schema could not say what they mean.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "portal.core.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_USER_RATE", "6000/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "spermatid-portal API",
    "DESCRIPTION": "Centers, pseudonymized patients, image sessions, inference jobs, review and validation.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,  # PATCH bodies: each serializer states itself which fields are optional
    "ENUM_NAME_OVERRIDES": {
        "StainResultEnum": "portal.validation.models.Stain",
        "ImageStatusEnum": "portal.imaging.models.ImageStatus",
        "JobStatusEnum": "portal.jobs.models.JobStatus",
        "JobImageStatusEnum": "portal.jobs.models.JobImageStatus",
        "ResultSetStatusEnum": "portal.results.models.ResultSetStatus",
    },
}

# --- cache ----------------------------------------------------------------------------------------
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
    else f"db+sqlite:///{VAR_DIR / 'celery_results.sqlite3'}"
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("out", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Longer than the longest job, so a message is not redelivered while its job still runs.
    # queue_order_strategy "priority": a worker started with --queues gpu,cpu takes gpu first (redis BRPOP
    # order), cpu only when gpu is empty; the default round robin would alternate.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600),
                                       "queue_order_strategy": "priority"}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
INFERENCE_QUEUE = env_str("INFERENCE_QUEUE", "cpu")  # the queue of jobs created here ("gpu" once GPU workers exist); kept by the job
INFERENCE_DEVICE = env_str("INFERENCE_DEVICE", "cpu")
INFERENCE_AUTO_ON_UPLOAD = env_bool("INFERENCE_AUTO_ON_UPLOAD", True)
TRAINING_QUEUE = env_str("TRAINING_QUEUE", "cpu")  # the same for training jobs (portal/training)
TRAINING_DEVICE = env_str("TRAINING_DEVICE", "cpu")
TRAINING_WORK_DIR = Path(env_str("TRAINING_WORK_DIR", str(VAR_DIR / "training")))  # worker-local checkpoints
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_HEARTBEAT_TIMEOUT_SECONDS = env_int("JOB_HEARTBEAT_TIMEOUT_SECONDS", 120)
JOB_SWEEP_INTERVAL_SECONDS = env_int("JOB_SWEEP_INTERVAL_SECONDS", 30)
JOB_RETRY_BACKOFF_SECONDS = env_float("JOB_RETRY_BACKOFF_SECONDS", 10.0)  # doubled after each failed attempt
JOB_SWEEP_IN_WORKER = env_bool("JOB_SWEEP_IN_WORKER", True)  # each worker also sweeps (beat-independent)
MODEL_STORE_PREFIX = "models"  # model bundles live in media storage under this folder
MODEL_UPLOAD_MAX_BYTES = env_int("MODEL_UPLOAD_MAX_BYTES", 1024 * 1024 * 1024)
AUDIT_FOLD_INTERVAL_SECONDS = env_float("AUDIT_FOLD_INTERVAL_SECONDS", 5.0)  # beat: chain pending read events
CELERY_BEAT_SCHEDULE = {
    "audit-fold-pending": {"task": "workers.tasks.audit_fold_pending", "schedule": AUDIT_FOLD_INTERVAL_SECONDS},
    "sweep-stale-jobs": {"task": "workers.tasks.sweep_stale_jobs", "schedule": float(JOB_SWEEP_INTERVAL_SECONDS)},
    "sweep-stale-training-jobs": {"task": "workers.tasks.sweep_stale_training_jobs",
                                  "schedule": float(JOB_SWEEP_INTERVAL_SECONDS)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- operations (portal/ops) -----------------------------------------------------------------------
# /metrics answers a scraper sending "Authorization: Bearer <METRICS_TOKEN>", or a signed-in superuser.
METRICS_TOKEN = env_str("METRICS_TOKEN", "") or ""

# --- logging --------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
