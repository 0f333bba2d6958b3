"""The domain's refusals. Each carries the API's machine code, its HTTP status and a message for a person.

cypher/http.py turns them into `{"error": message, "code": code}` with the class's status; the
status is a plain number, so services still know nothing of Flask.
"""

from __future__ import annotations


class CypherError(Exception):
    status: int = 400
    code: str = "invalid_request"
    message: str = "The request could not be processed."

    def __init_subclass__(cls, **kwargs: object) -> None:
        # A new code must say its own status, or it would silently inherit its parent's.
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ and "status" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} has a code of its own, so it needs its own status")

    # Whole seconds until asking again can succeed, sent as Retry-After; None when waiting won't help.
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidRequest(CypherError):
    status = 400
    code = "invalid_request"
    message = "The request is malformed."


class InvalidUsername(CypherError):
    status = 400
    code = "invalid_username"
    message = "A username is 3 to 64 characters: ASCII letters, digits, '.', '_', '-' or '@'."


class InvalidMessage(CypherError):
    status = 400
    code = "invalid_message"
    message = "The OPAQUE message is malformed."


class UsernameTaken(CypherError):
    status = 409
    code = "username_taken"
    message = "This username is taken."


class RegistrationExpired(CypherError):
    status = 410
    code = "registration_expired"
    message = "The registration has expired; start again."


class LoginExpired(CypherError):
    status = 410
    code = "login_expired"
    message = "The login has expired or was already used; start again."


class InvalidCredentials(CypherError):
    status = 401
    code = "invalid_credentials"
    message = "Invalid username or password."


class AccountPending(CypherError):
    status = 403
    code = "account_pending"
    message = "This account has not finished TOTP enrolment."


class AccountDisabled(CypherError):
    status = 403
    code = "account_disabled"
    message = "This account is disabled."


class InvalidToken(CypherError):
    status = 401
    code = "invalid_token"
    message = "The token is invalid."


class TokenExpired(InvalidToken):
    # The API's code stays invalid_token; the message tells a person why.
    message = "The token has expired."


class TokenReused(InvalidToken):
    status = 401
    code = "token_reused"
    message = "This refresh token was already used; the session has been revoked."


class NotFound(CypherError):
    status = 404
    code = "not_found"
    message = "Not found."


class InvalidTotp(CypherError):
    status = 401
    code = "invalid_totp"
    message = "Invalid TOTP code"


class PassAuthExpired(CypherError):
    status = 401
    code = "pass_auth_expired"
    message = "Password authentication token not found or expired"


class TooManyAttempts(CypherError):
    status = 429
    code = "too_many_attempts"
    message = "Too many wrong codes. Log in with your password again."


class OriginRejected(CypherError):
    status = 403
    code = "origin_rejected"
    message = "This request must come from an allowed origin."


class PasswordChangeInProgress(CypherError):
    status = 409
    code = "password_change_in_progress"
    message = "A password change is already in progress; finish it or wait a minute."
