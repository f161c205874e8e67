"""Reads secrets from files or systemd credentials; their values never reach a log line."""

from __future__ import annotations

from pathlib import Path

from doorwatch.config.base import CREDENTIALS_VARIABLE
from doorwatch.errors import ConfigError

# A secret file is a password or a token, never a document; anything bigger is a mistake
# (a certificate bundle or a whole config pointed at by accident).
_MAX_SECRET_BYTES = 64 * 1024


def read_secret(path: Path, *, key_path: str) -> str:
    """Return the secret stored in ``path`` without its trailing newline.

    Args:
        path: the file, already resolved against the config directory.
        key_path: the config key that named it, for the error message.
    """
    if "$" in str(path) and CREDENTIALS_VARIABLE in str(path):
        raise ConfigError(
            f"{key_path}: {path} uses ${CREDENTIALS_VARIABLE}, which is not set; "
            "fix: start doorwatch from its systemd unit (LoadCredential=) or give a plain file path"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{key_path}: secret file {path} does not exist; fix: create it (mode 0600) "
            "or point the key at the right file"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{key_path}: secret file {path} is not readable by this user; "
            "fix: use LoadCredential= in the unit or adjust the file's owner"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{key_path}: {path} is a directory; fix: name the file") from None
    if len(data) > _MAX_SECRET_BYTES:
        raise ConfigError(f"{key_path}: {path} is too large to be a secret; fix: check the path")
    return data.decode("utf-8", errors="strict").rstrip("\r\n")
