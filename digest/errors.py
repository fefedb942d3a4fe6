"""One exception root. Every message says what was wrong and what to do next."""


class DigestError(Exception):
    """Something the operator can fix; the CLI prints it as one line and exits 1."""


class ConfigError(DigestError):
    """config.toml, an environment variable or a flag is wrong."""


class SourceError(DigestError):
    """One source (feed, calendar, notes folder) could not be collected."""


class RenderError(DigestError):
    """The edition could not be rendered into an email that is safe to send."""


class AudienceError(DigestError):
    """A subscriber file, list or address is wrong."""


class DeliveryError(DigestError):
    """An edition could not be delivered."""
