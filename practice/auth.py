from django.contrib.auth.backends import ModelBackend

from .models import User


class EmailBackend(ModelBackend):
    """Django's backend, fetching the user's membership and practice in the same query."""

    def get_user(self, user_id):
        try:
            user = User._default_manager.select_related("membership__practice").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
