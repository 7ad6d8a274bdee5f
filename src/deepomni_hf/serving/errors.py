"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`, with the documented status codes.

| status | type | when |
|---|---|---|
| 400 | `invalid_request_error` | malformed JSON or fields, bad base64, undecodable / silent / too long audio, unknown voice, modality or
  output format, sampling values out of range, too many tokens, an unknown or expired audio id |
| 404 | `not_found_error` | unknown route, unknown model name |
| 405 | `invalid_request_error` | wrong HTTP method |
| 413 | `invalid_request_error` | request body over the limit (refused from `Content-Length` before it is read) |
| 415 | `invalid_request_error` | a body that is not `application/json` |
| 429 | `rate_limit_error` | the queue is full (`Retry-After` header) |
| 503 | `server_overloaded` | waited in the queue longer than the queue timeout (`Retry-After` header) |
| 500 | `server_error` | anything unexpected (logged without the request body) |
"""

from dataclasses import dataclass


ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_overloaded",
}


@dataclass
class APIError(Exception):
    """An error returned to the client. `message` must not quote the request body (it may hold audio or secrets)."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    retry_after: int | None = None

    def __post_init__(self):
        super().__init__(self.message)

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param, self.code)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


__all__ = ["APIError", "ERROR_TYPES", "bad_request", "error_body"]
