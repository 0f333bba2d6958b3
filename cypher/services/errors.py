"""The domain's refusals. Each carries the API's machine code and a message for a person.

Blueprints turn them into `{"error": message, "code": code}` with the status that
cypher/http.py assigns to the code; services know nothing of HTTP.
"""

from __future__ import annotations


class CypherError(Exception):
    code: str = "invalid_request"
    message: str = "The request could not be processed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class InvalidRequest(CypherError):
    code = "invalid_request"
    message = "The request is malformed."


class InvalidUsername(CypherError):
    code = "invalid_username"
    message = "A username is 3 to 64 characters: ASCII letters, digits, '.', '_', '-' or '@'."


class InvalidMessage(CypherError):
    code = "invalid_message"
    message = "The OPAQUE message is malformed."


class UsernameTaken(CypherError):
    code = "username_taken"
    message = "This username is taken."


class RegistrationExpired(CypherError):
    code = "registration_expired"
    message = "The registration has expired; start again."


class LoginExpired(CypherError):
    code = "login_expired"
    message = "The login has expired or was already used; start again."


class InvalidCredentials(CypherError):
    code = "invalid_credentials"
    message = "Invalid username or password."


class AccountPending(CypherError):
    code = "account_pending"
    message = "This account has not finished TOTP enrolment."


class AccountDisabled(CypherError):
    code = "account_disabled"
    message = "This account is disabled."


class InvalidToken(CypherError):
    code = "invalid_token"
    message = "The token is invalid."


class TokenExpired(InvalidToken):
    # The API's code stays invalid_token; the message tells a person why.
    message = "The token has expired."


class TokenReused(InvalidToken):
    code = "token_reused"
    message = "This refresh token was already used; the session has been revoked."


class NotFound(CypherError):
    code = "not_found"
    message = "Not found."


class InvalidTotp(CypherError):
    code = "invalid_totp"
    message = "Invalid TOTP code"


class PassAuthExpired(CypherError):
    code = "pass_auth_expired"
    message = "Password authentication token not found or expired"


class TooManyAttempts(CypherError):
    code = "too_many_attempts"
    message = "Too many wrong codes. Log in with your password again."


class OriginRejected(CypherError):
    code = "origin_rejected"
    message = "This request must come from an allowed origin."


class PasswordChangeInProgress(CypherError):
    code = "password_change_in_progress"
    message = "A password change is already in progress; finish it or wait a minute."
