"""Settings for Connection Practice, read from the environment.

With nothing set (the embedded default) the site runs on SQLite in var/, Celery's
file-system broker in var/celery/ and writes e-mail to var/mail/. DATABASE_URL and
REDIS_URL switch to PostgreSQL and Redis. Every variable is listed in the README.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_url(name, schemes, default=""):
    raw = os.environ.get(name, default)
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}, not {raw!r}")
    return raw


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]
# The port `make run` serves on (`make run PORT=8010`); e-mailed links follow it unless SITE_URL is set.
PORT = env_int("PORT", 8000)
SITE_URL = env_url("SITE_URL", ("http", "https"), f"http://127.0.0.1:{PORT}").rstrip("/")
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "practice",
    "clients",
    "assessments",
    # The composition root: settings, URLs, the Celery app and the developer commands.
    "connection_practice",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "practice.middleware.PracticeMiddleware",
    "practice.security.SecurityMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "connection_practice.urls"
WSGI_APPLICATION = "connection_practice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "practice.security.page_security",
            ],
        },
    }
]

# Databases: SQLite in var/ unless DATABASE_URL names PostgreSQL (psycopg 3).
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # A database that does not answer costs a request seconds, not minutes.
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 2)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            # A file, not memory, so that a real Celery worker in the tests sees the same data.
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
            "OPTIONS": {
                # WAL and a busy timeout let the web process, worker and beat share the file.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
# The worker's per-message statements are prepared on PostgreSQL (practice/prepared.py); off behind a
# pooler that moves statements between sessions (PgBouncer in transaction mode before 1.21).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", ("redis", "rediss"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that is down or hung costs a request at most a second per call, never thirty.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "practice.User"
# django-axes first: it refuses a locked-out sign-in before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "practice.auth.EmailBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The language of staff pages and of anything said outside a partner's pages. A partner's pages and
# e-mails are in that partner's own language (clients.Partner.language), switched on explicitly by the
# partner views and the worker, never by a cookie or the browser (another person's device may be used).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` writes (the tests and the bench collect into a folder of their own).
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Files served at the site's root (/favicon.ico, which browsers and tools ask for on their own).
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "media"}},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# E-mail: files in var/mail/ unless an SMTP host is configured.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Connection Practice <no-reply@localhost>")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = Path(env_str("EMAIL_FILE_PATH") or VAR_DIR / "mail")
# An explicit backend class wins (a provider's API backend, or a test backend in a worker).
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or EMAIL_BACKEND

# Celery: Redis when REDIS_URL is set, else kombu's file-system transport under var/ so that a
# real worker and beat run with no server at all.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": 300,
        # A hung Redis must not hold a worker or beat for long (web requests never wait on it at all).
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
    }
    CELERY_BROKER_CONNECTION_TIMEOUT = 2
else:
    _queue_dir = Path(env_str("CELERY_FS_DIR") or VAR_DIR / "celery")
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # kombu's own file-system transport lets the worker read a message another process is still
    # writing, and the worker stops on it; this subclass writes each message whole (its docstring says how).
    CELERY_BROKER_TRANSPORT = "connection_practice.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
        # The transport polls its folder; kombu's default of a second adds a second to every task.
        "polling_interval": 0.1,
    }
# One queue name per deployment (and per test run, so parallel test workers never share tasks).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Seconds before a killed pool process's task counts as lost (and is handed out again).
CELERY_WORKER_LOST_WAIT = env_int("CELERY_WORKER_LOST_WAIT", 10)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Hand due outbox rows to the workers (a nudge after each commit makes most of them go at once).
    "dispatch": {"task": "practice.tasks.dispatch", "schedule": float(env_int("OUTBOX_DISPATCH_SECONDS", 5))},
    # Queue the reminders that have fallen due.
    "sweep-reminders": {"task": "assessments.tasks.sweep_reminders", "schedule": 60.0},
    # Write the measurement plans' administrations whose day has come (assessments/plans.py).
    "sweep-plans": {"task": "assessments.tasks.sweep_plans", "schedule": 60.0},
    # The counselors' weekly digest, on each practice's Monday morning (assessments/digest.py).
    "weekly-digests": {"task": "assessments.tasks.weekly_digests", "schedule": 300.0},
}

# Sessions: staff sessions idle out after 30 minutes and end after 12 hours (see docs/security.md).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
# The idle expiry slides on activity: practice.middleware.touch writes the session at most once
# per SESSION_TOUCH_SECONDS instead of on every request.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_TOUCH_SECONDS = env_int("SESSION_TOUCH_SECONDS", 60)
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60)
# Seconds before the idle limit when a signed-in page warns (static/js/session.js).
SESSION_WARNING_SECONDS = env_int("SESSION_WARNING_SECONDS", 5 * 60)
# A partner's session reaches one response only. It idles out after 30 minutes, as a staff session
# does: a phone left unlocked must not show the response for long, and every answer is on the
# server already (opening the link again resumes where they were).
PARTNER_SESSION_IDLE_SECONDS = env_int("PARTNER_SESSION_IDLE_SECONDS", 30 * 60)
# Where a partner's quick exit goes when no practice is known (each practice sets its own).
DEFAULT_QUICK_EXIT_URL = env_url("DEFAULT_QUICK_EXIT_URL", ("http", "https"), "https://www.weather.com/")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp 4): scripts and styles from this site only, no inline code;
# a per-response nonce is added to script-src for the script tags that carry it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# Sign-in lockout (django-axes): five failed sign-ins for one e-mail, or from one address, pause
# sign-in for 15 minutes, never for good; the page is the same whether or not the e-mail exists.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
# Two separate counts: one per account (the e-mail typed) and one per client address. Either one
# reaching the limit pauses sign-in; failures for one account never pause another from elsewhere.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# The sign-in form posts the e-mail as `username`; axes would read USERNAME_FIELD (`email`) and
# count every failure under an empty name.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "practice.security.sign_in_username"
AXES_HANDLER = "practice.security.LockoutHandler"
AXES_RESET_ON_SUCCESS = True
# The pause runs from the lockout: trying again early neither extends nor restarts it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "practice.security.locked_out"
AXES_CLIENT_IP_CALLABLE = "practice.models.client_address"
# How many reverse proxies in front of the site append to X-Forwarded-For (production has one).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0 if DEBUG else 1)
AXES_VERBOSE = False

# Lookups of secret links (partner links, invitations, stop-reminders) naming nothing, per client
# address: past the limit within the window every lookup from that address gets the 429 page until
# the window (counted from the first unknown token) ends.
TOKEN_LOOKUP_LIMIT = env_int("TOKEN_LOOKUP_LIMIT", 20)
TOKEN_LOOKUP_WINDOW_SECONDS = env_int("TOKEN_LOOKUP_WINDOW_SECONDS", 600)

# Two-factor sign-in (django-otp): TOTP apps plus single-use recovery codes. Operators (superusers
# without a practice) need it whenever DEBUG is off; practice staff when their practice requires
# it, or as soon as they have set it up.
OTP_TOTP_ISSUER = "Connection Practice"
OPERATORS_REQUIRE_TWO_FACTOR = env_bool("OPERATORS_REQUIRE_TWO_FACTOR", not DEBUG)

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Link tokens in logged paths are replaced by [redacted] (practice/log_filters.py); answers,
# passwords and tokens are never logged at all (tests/security/test_logs.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "practice.log_filters.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["redact_secrets"]},
        "django.server": {"handlers": ["console"], "filters": ["redact_secrets"], "level": "INFO", "propagate": False},
        "django.security": {"filters": ["redact_secrets"]},
        # Sign-in attempts are in the audit log; django-axes' own lines only when something is wrong.
        "axes": {"level": "WARNING"},
        # The PDF renderer logs every layout step and every CSS rule it skips.
        "weasyprint": {"level": "ERROR"},
        "fontTools": {"level": "WARNING"},
    },
}

# The outbox (practice/outbox.py): a row handed out and not started within the queue lease was lost by
# the broker and is handed out again; while the mail server fails, one waiting row is tried each probe.
OUTBOX_QUEUE_LEASE_SECONDS = env_int("OUTBOX_QUEUE_LEASE_SECONDS", 60)
OUTBOX_PROBE_SECONDS = env_int("OUTBOX_PROBE_SECONDS", 60)

# /readyz answers 503 once due outbox work has waited longer than this (seconds).
READY_MAX_DELAY_SECONDS = env_int("READY_MAX_DELAY_SECONDS", 300)

# Product defaults a practice can change in its settings.
DEFAULT_DUE_DAYS = 7
DEFAULT_LINK_GRACE_DAYS = 14
# Exports with more rows than this are built by the worker instead of in the web request.
EXPORT_INLINE_MAX_ROWS = env_int("EXPORT_INLINE_MAX_ROWS", 100_000)
