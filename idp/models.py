"""Tables of the identity-provider app: links from provider identities to accounts, sign-in
flows in progress, login tokens, provider sessions (for back-channel logout), single-use JWT
ids, and the OAuth 2.0 authorization server's clients, requests, codes and sessions.

Secrets are stored only as SHA-256 hex digests (state, browser binding, login tokens, codes),
like access tokens in homeserver/models/accounts.py. Timestamps are milliseconds since the epoch.
"""

from django.conf import settings
from django.db import models


class ExternalIdentity(models.Model):
    """The Matrix account an (issuer, subject) pair signs in as. Never keyed by display name."""

    provider_id = models.CharField(max_length=64)
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey("homeserver.Account", to_field="user_id", db_column="user_id",
                             on_delete=models.CASCADE, related_name="external_identities")
    # Mapped from the claims by the provider's user_mapping (this server keeps no 3PIDs).
    email = models.CharField(max_length=320, default="")
    organisation = models.CharField(max_length=255, default="")
    created_ts = models.BigIntegerField()
    last_login_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_external_identity"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="idp_identity_iss_sub_uniq")]

    def __str__(self) -> str:
        return f"{self.provider_id}:{self.subject} -> {self.user_id}"


class StaffIdentity(models.Model):
    """The admin-UI (Django) user an (issuer, subject) pair signs in as."""

    provider_id = models.CharField(max_length=64)
    issuer = models.CharField(max_length=512)
    subject = models.CharField(max_length=255)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="staff_identity")
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_staff_identity"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="idp_staff_iss_sub_uniq")]

    def __str__(self) -> str:
        return f"{self.provider_id}:{self.subject} -> staff {self.user_id}"


class SsoFlow(models.Model):
    """A sign-in sent to a provider and not yet come back (or come back and awaiting the
    user's confirmation). `state_hash` is SHA-256 of the `state` parameter, `browser_hash` of
    the cookie that binds the flow to the browser that started it."""

    PURPOSES = [("login", "Matrix client login"), ("admin", "Admin UI"), ("oauth2", "OAuth 2.0")]

    state_hash = models.CharField(max_length=64, unique=True)
    browser_hash = models.CharField(max_length=64)
    provider_id = models.CharField(max_length=64)
    purpose = models.CharField(max_length=16, choices=PURPOSES)
    nonce = models.CharField(max_length=128)
    code_verifier = models.CharField(max_length=128)
    redirect_url = models.TextField(default="")  # login: the client's redirectUrl
    oauth_request = models.ForeignKey("OAuthRequest", null=True, on_delete=models.CASCADE)
    created_ts = models.BigIntegerField()
    expires_ts = models.BigIntegerField()
    callback_ts = models.BigIntegerField(null=True)  # set once: the state is single use
    # After a successful callback that needs the user's confirmation (redirectUrl not on the
    # whitelist): who signed in, and the hash of the one-time confirmation token.
    user_id = models.CharField(max_length=255, default="")
    subject = models.CharField(max_length=255, default="")
    sid = models.CharField(max_length=255, default="")
    confirm_hash = models.CharField(max_length=64, default="")
    confirmed_ts = models.BigIntegerField(null=True)

    class Meta:
        db_table = "idp_sso_flow"

    def __str__(self) -> str:
        return f"{self.purpose} flow via {self.provider_id}"


class LoginToken(models.Model):
    """Spec: client-server API "Client login via SSO" step 3: a short-lived, single-use token
    for POST /login type m.login.token."""

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey("homeserver.Account", to_field="user_id", db_column="user_id",
                             on_delete=models.CASCADE, related_name="+")
    provider_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=255, default="")
    sid = models.CharField(max_length=255, default="")
    expires_ts = models.BigIntegerField()
    used_ts = models.BigIntegerField(null=True)

    class Meta:
        db_table = "idp_login_token"

    def __str__(self) -> str:
        return f"login token of {self.user_id}"


class ProviderSession(models.Model):
    """A device (or an admin-UI session) that a provider session signed in: what an OpenID
    back-channel logout for (sub, sid) ends."""

    provider_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=255)
    sid = models.CharField(max_length=255, default="")
    user_id = models.CharField(max_length=255, default="")
    device_id = models.CharField(max_length=255, default="")
    admin_session_key = models.CharField(max_length=64, default="")
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_provider_session"
        indexes = [models.Index(fields=["provider_id", "sid"], name="idp_psession_sid"),
                   models.Index(fields=["provider_id", "subject"], name="idp_psession_sub")]

    def __str__(self) -> str:
        return f"{self.provider_id} session {self.sid or self.subject}"


class UsedJwtId(models.Model):
    """`jti` values already accepted (token login, logout tokens, security events), kept until
    the token would have expired anyway."""

    issuer = models.CharField(max_length=512)
    jti = models.CharField(max_length=255)
    purpose = models.CharField(max_length=32)
    expires_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_used_jti"
        constraints = [models.UniqueConstraint(fields=["issuer", "jti", "purpose"],
                                               name="idp_used_jti_uniq")]

    def __str__(self) -> str:
        return f"{self.purpose} jti of {self.issuer}"


class OAuthClient(models.Model):
    """Spec: client-server API "Client registration" (RFC 7591 dynamic registration)."""

    client_id = models.CharField(max_length=64, unique=True)
    metadata = models.JSONField()
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_oauth_client"

    def __str__(self) -> str:
        return f"{self.metadata.get('client_name') or self.client_id}"


class OAuthRequest(models.Model):
    """An authorization request (spec "Authorisation code flow") until the user consents."""

    request_id = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE)
    redirect_uri = models.TextField()
    scope = models.TextField()
    device_id = models.CharField(max_length=255)
    state = models.TextField(default="")
    nonce = models.CharField(max_length=255, default="")
    code_challenge = models.CharField(max_length=128)
    response_mode = models.CharField(max_length=16)
    browser_hash = models.CharField(max_length=64)
    user_id = models.CharField(max_length=255, default="")  # set after upstream sign-in
    provider_id = models.CharField(max_length=64, default="")
    subject = models.CharField(max_length=255, default="")
    sid = models.CharField(max_length=255, default="")
    consent_hash = models.CharField(max_length=64, default="")
    created_ts = models.BigIntegerField()
    expires_ts = models.BigIntegerField()
    done_ts = models.BigIntegerField(null=True)

    class Meta:
        db_table = "idp_oauth_request"

    def __str__(self) -> str:
        return f"authorization request {self.request_id}"


class OAuthCode(models.Model):
    code_hash = models.CharField(max_length=64, unique=True)
    request = models.OneToOneField(OAuthRequest, on_delete=models.CASCADE)
    auth_time = models.BigIntegerField()
    expires_ts = models.BigIntegerField()
    used_ts = models.BigIntegerField(null=True)
    # The device the code's tokens went to: a replayed code revokes them (RFC 6749 4.1.2).
    issued_device_id = models.CharField(max_length=255, default="")

    class Meta:
        db_table = "idp_oauth_code"

    def __str__(self) -> str:
        return f"code for {self.request_id}"


class OAuthSession(models.Model):
    """A device whose tokens came from the OAuth 2.0 API, and the client it was granted to."""

    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE)
    user_id = models.CharField(max_length=255)
    device_id = models.CharField(max_length=255)
    scope = models.TextField()
    created_ts = models.BigIntegerField()

    class Meta:
        db_table = "idp_oauth_session"
        constraints = [models.UniqueConstraint(fields=["user_id", "device_id"],
                                               name="idp_oauth_session_device_uniq")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.device_id} via {self.client_id}"
