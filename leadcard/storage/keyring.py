"""Token encryption at rest: a Fernet key ring and the key file behind the embedded default.

Public API
----------
``KeyRing(keys)``                     keys newest first; encrypts with the newest, decrypts with any
``KeyRing.from_settings(token_keys, instance_path)``
                                      ring from ``TOKEN_KEYS`` or from ``<instance_path>/token.key``
``KeyRing.encrypt / decrypt / rotate / needs_rotation``
``generate_key() -> str``             a fresh Fernet key (url-safe base64, 44 characters)
``fingerprint(secret, key) -> str``   HMAC-SHA256 hex of a secret: lookups that must not reveal it

Exceptions
----------
``UndecryptableToken``  a stored value that no key in the ring can read (wrong key, tampered,
                        truncated or not a Fernet token). Its message never carries the value.
``ValueError``          a bad key or key file; the message names the position or the path, never
                        the key material.

Rotation runbook: put a new key first in ``TOKEN_KEYS`` (``new,old``), re-encrypt rows with
``rotate`` (cheaply skip rows where ``needs_rotation`` is false), then drop the old key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Callable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from leadcard.core import errors

KEY_FILE_NAME = "token.key"


class UndecryptableToken(errors.LeadCardError):
    """No key in the ring can decrypt this value (wrong key, tampered or not a token).

    The message is fixed text: it never contains the ciphertext, the plaintext or a key.
    One of the error family, so that a view shows the designed "temporarily unavailable"
    page and `portals check` reports the portal and goes on (a host started with another
    key ring than the fleet's meets every row like this).
    """

    code = "undecryptable_token"
    status = 503


class KeyRing:
    """Owns the Fernet keys for tokens at rest: newest key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str | bytes], *, source: str = "key ring") -> None:
        """Build the ring from keys ordered newest first; ``ValueError`` on an empty or bad key.

        ``source`` only labels error messages ("TOKEN_KEYS entry #2 of 3 is not a valid ...").
        """
        if isinstance(keys, (str, bytes)):
            # A bare string would be iterated character by character; fail loudly instead.
            raise TypeError("KeyRing expects a list of keys, newest first")
        if not keys:
            raise ValueError("the token key ring needs at least one key")
        fernets = [
            _load_key(key, f"{source} entry #{i + 1} of {len(keys)}") for i, key in enumerate(keys)
        ]
        self._newest = fernets[0]
        self._ring = MultiFernet(fernets)
        self._size = len(fernets)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        # Never show key material, even in a debugger or a crash dump.
        return f"<KeyRing keys={self._size}>"

    def encrypt(self, plaintext: str) -> str:
        """Encrypt text under the newest key; returns url-safe ASCII."""
        if not isinstance(plaintext, str):
            raise TypeError("KeyRing.encrypt takes str")
        try:
            data = plaintext.encode("utf-8")
        except UnicodeEncodeError:
            # The codec error would carry the whole string in its .object attribute.
            raise ValueError("plaintext is not valid Unicode text") from None
        return self._ring.encrypt(data).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a value produced by any key in the ring; ``UndecryptableToken`` otherwise."""
        return _to_text(self._run(self._ring.decrypt, token))

    def rotate(self, token: str) -> str:
        """Re-encrypt a stored value under the newest key (Fernet keeps its original timestamp)."""
        return self._run(self._ring.rotate, token).decode("ascii")

    def needs_rotation(self, token: str) -> bool:
        """True when the value is readable by the ring but not under the newest key.

        Raises ``UndecryptableToken`` when no key can read it, so a rotation job does not
        mistake garbage for "old key".
        """
        try:
            self._run(self._newest.decrypt, token)
            return False
        except UndecryptableToken:
            pass
        self._run(self._ring.decrypt, token)  # raises UndecryptableToken when no key fits
        return True

    @staticmethod
    def _run(operation: Callable[[bytes], bytes], token: str) -> bytes:
        """Apply a Fernet operation, turning every failure into ``UndecryptableToken``."""
        if not isinstance(token, str):
            raise TypeError("stored tokens are str")
        try:
            return operation(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, ValueError, TypeError):
            # "from None": the chained error could show part of the value in a traceback.
            raise UndecryptableToken(
                "stored token cannot be decrypted with any key in the ring "
                "(wrong TOKEN_KEYS, tampered or not an encrypted token)"
            ) from None

    @classmethod
    def from_settings(cls, token_keys: str | None, instance_path: str) -> KeyRing:
        """Ring from ``TOKEN_KEYS`` (comma-separated, newest first) or from the instance key file.

        With ``TOKEN_KEYS`` unset or blank the ring comes from ``<instance_path>/token.key``
        (one key per line, newest first), which is created with mode 0600 on first use.
        """
        if token_keys is not None and token_keys.strip():
            keys = [part.strip() for part in token_keys.split(",") if part.strip()]
            if not keys:
                raise ValueError("TOKEN_KEYS is set but contains no keys")
            return cls(keys, source="TOKEN_KEYS")
        path = os.path.join(instance_path, KEY_FILE_NAME)
        return cls(load_or_create_key_file(path), source=f"token key file {path}")


def _load_key(key: str | bytes, where: str) -> Fernet:
    """One Fernet from one key; ``ValueError`` naming ``where`` and never echoing the key."""
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # "from None": keep the library's exception (and anything it may quote) out of tracebacks.
        raise ValueError(
            f"{where} is not a valid Fernet key: expected 32 url-safe base64-encoded bytes "
            "(44 characters); generate one with leadcard.storage.keyring.generate_key()"
        ) from None


def _to_text(data: bytes) -> str:
    """Decode decrypted bytes; a non-UTF-8 payload is reported without its content."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UndecryptableToken("decrypted token is not UTF-8 text") from None


def load_or_create_key_file(path: str) -> list[str]:
    """Return the keys in ``path`` (newest first), creating it with one fresh key if missing.

    Creation is race-free: the key is written to a private temporary file (``O_CREAT|O_EXCL``,
    mode 0600) and published with ``os.link``, which fails if the name already exists. So two
    processes starting at once agree on one key, and no reader ever sees a half-written file.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    _publish_new_key(path, directory)
    return _read_key_file(path)


def _publish_new_key(path: str, directory: str) -> None:
    """Write a fresh key to a temporary file and hard-link it to ``path`` unless it exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        tmp = os.path.join(directory, f".{KEY_FILE_NAME}.{os.getpid()}.{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(generate_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; its key is the one everybody reads
    finally:
        os.unlink(tmp)


def _read_key_file(path: str) -> list[str]:
    """Read keys from an existing key file, refusing one that others may read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as handle:
        # fstat on the open descriptor: the mode checked is the mode of the file read.
        mode = os.fstat(handle.fileno()).st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(
                f"token key file {path} has mode {stat.S_IMODE(mode):04o}; it must be "
                f"accessible by its owner only (run: chmod 600 {path})"
            )
        lines = [line.strip() for line in handle.read().splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise ValueError(f"token key file {path} is empty; delete it to generate a new key")
    return keys


def generate_key() -> str:
    """A fresh random Fernet key as text (url-safe base64, 44 characters)."""
    return Fernet.generate_key().decode("ascii")


def fingerprint(secret: str, key: bytes) -> str:
    """HMAC-SHA256 hex of ``secret`` under ``key``: stable for lookups, useless for guessing.

    The result is 64 hex characters, which ``leadcard.core.redact`` treats as token-shaped; log a
    short prefix (``fingerprint(...)[:12]``) if you need to correlate in logs.
    """
    if not isinstance(key, (bytes, bytearray)) or not key:
        # An empty key makes this a plain hash of a guessable secret.
        raise ValueError("fingerprint needs a non-empty bytes key")
    return hmac.new(bytes(key), secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
