"""Production settings (DEBUG=false) for a site served over plain HTTP on loopback in a fault test:
the same code paths as production, minus what needs TLS or a collectstatic run."""

from connection_practice import settings as _production

globals().update({name: value for name, value in vars(_production).items() if name.isupper()})

STORAGES = {**_production.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_USE_FINDERS = True
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
