from django.contrib.auth.backends import ModelBackend
from django.db.models import QuerySet

from .models import User

# Facts every staff page shows about the signed-in person (say, how many safety alerts wait for
# them), as {name: a function returning a query expression over the user}. Apps above this one
# register theirs (so this layer never imports them); each becomes a subquery of the one query
# that loads the user, so the header costs no query of its own.
USER_ANNOTATIONS = {}


def annotate_user(name):
    """Register ``fn()``, returning an expression over User, as ``request.user.<name>`` on every request."""

    def register(fn):
        USER_ANNOTATIONS[name] = fn
        return fn

    return register


_annotated: dict[tuple, QuerySet] = {}


def _users():
    """The users with their membership, practice and header facts, resolved once per process.

    Resolving the facts' subqueries took most of a signed-in request that did nothing else (the
    bench's floor); they hold no value of the moment (times are the database's ``NOW()``), so the
    queryset is built on first use and cloned by every request."""
    key = tuple(USER_ANNOTATIONS)
    if key not in _annotated:
        users = User._default_manager.select_related("membership__practice")
        if USER_ANNOTATIONS:
            users = users.annotate(**{name: fn() for name, fn in USER_ANNOTATIONS.items()})
        _annotated.clear()
        _annotated[key] = users
    return _annotated[key]


class EmailBackend(ModelBackend):
    """Django's backend, fetching the user's membership, practice and header facts in one query."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        # Addresses are stored in lower case (UserManager.create_user), and the lockout counts them
        # so: "Maya@Demo.example" is the same person, not a failed sign-in.
        if isinstance(username, str):
            username = username.strip().lower()
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        try:
            user = _users().get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
