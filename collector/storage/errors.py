"""Exception tree of collector.storage: one base, specific subclasses, causes kept with ``from``.

Write failures are classified (telegraf-style) so the drainer knows what to do with a batch:

==========================  ==========================  ======================================
error                       HTTP                        drainer action
==========================  ==========================  ======================================
``PartialWriteError``       400, 422                    dead-letter the named bad points,
                                                        write the rest again (idempotent)
``BatchTooLargeError``      413                         split the batch in halves
``RetryableWriteError``     429, 5xx, connection error  back off (Retry-After honoured), retry
``WriteAlarmError``         401, 403, 404               operator alarm, keep the spool, retry
==========================  ==========================  ======================================
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by collector.storage."""


class LineProtocolError(StorageError, ValueError):
    """A value that cannot be written as line protocol (no fields, NaN, newline in a tag...)."""


class SpoolError(StorageError):
    """The durable spool could not store or read lines."""


class SpoolFullError(SpoolError):
    """The spool reached ``max_bytes`` under the ``reject`` policy: do not ACK the message."""


class WriteError(StorageError):
    """A batch write failed; subclasses say what to do about it."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class PartialWriteError(WriteError):
    """400/422: the server refused some points (parse error, field type conflict...).

    ``line_numbers`` (1-based, in the request body) and ``originals`` (refused lines) are set
    when the body names them in JSON (2.x ``line``; 3.x ``data[].line_number/original_line``).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str = "",
        line_numbers: tuple[int, ...] = (),
        originals: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, status, body)
        self.line_numbers = line_numbers
        self.originals = originals


class BatchTooLargeError(WriteError):
    """413: request body larger than the server accepts."""


class RetryableWriteError(WriteError):
    """429, 5xx or a connection failure: the same batch may succeed later."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status, body)
        self.retry_after_s = retry_after_s


class WriteAlarmError(WriteError):
    """401/403/404: configuration or credentials are wrong; an operator must act."""

    def __init__(
        self, message: str, status: int | None = None, body: str = "", alarm: str = "write_refused"
    ) -> None:
        super().__init__(message, status, body)
        self.alarm = alarm
