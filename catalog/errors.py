"""What every refusal of a person's input has in common, wherever in the layers it is decided."""


class Refusal(ValueError):
    """Input we will not or cannot use: `code` for programs, `message` for people, `status` for the HTTP
    answer (400 unless a subclass knows better: 413 too large, 415 a type we do not read), and for a
    refusal that passes (503 busy) `retry_after`, the seconds to wait before trying again.

    Callers that turn refusals into answers catch Refusal, whichever module raised it.
    """

    def __init__(self, code, message, status=400, retry_after=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
