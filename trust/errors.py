"""Why an envelope or a registry was refused. Callers map these to gRPC statuses."""


class TrustError(Exception):
    """Base of everything trust refuses."""


class EnvelopeRejected(TrustError):
    """The envelope failed a check: the message says which. Maps to UNAUTHENTICATED."""


class UnknownSigner(EnvelopeRejected):
    """The signer or its key id is not in the registry."""


class KeyNotValid(EnvelopeRejected):
    """The key exists but was not valid at signing time (not yet valid, expired or revoked)."""


class BadSignature(EnvelopeRejected):
    """The signature does not verify over the bytes received."""


class StaleEnvelope(EnvelopeRejected):
    """signed_at lies outside the receiver's clock-skew window."""


class ReplayedEnvelope(EnvelopeRejected):
    """This signer's nonce was already seen inside the clock-skew window."""


class PeerMismatch(EnvelopeRejected):
    """Over mutual TLS, the connection's client certificate is not the envelope signer's."""


class WrongSigner(TrustError):
    """A validly signed envelope from an institution that may not send this message (wrong role,
    or an answer about another institution's account). Maps to PERMISSION_DENIED."""


class WrongPayloadType(TrustError):
    """A validly signed envelope carries another message than the one this call takes.
    Maps to INVALID_ARGUMENT: the sender is authentic but sent the wrong thing."""


class MalformedPayload(TrustError):
    """A validly signed payload does not parse as its declared type. Maps to INVALID_ARGUMENT."""


class RegistryError(TrustError):
    """The registry file is not valid: the message names the entry and field."""
