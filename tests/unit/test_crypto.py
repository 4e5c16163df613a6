"""Key ring: round trip, rotation, key file creation and permissions, no key material in errors."""

import multiprocessing
import os
import stat
import time
import traceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadcard.storage import keyring as crypto
from leadcard.storage.keyring import (
    KEY_FILE_NAME,
    KeyRing,
    UndecryptableToken,
    fingerprint,
    generate_key,
)

TOKEN = "e3c4a864006e9d2c6b1a0f5e4d3c2b1a0f9e8d7c6b5a4e3c4a864006e9d2c6b1a0f5e4d3c2"


def _everything_said(exc: BaseException) -> str:
    """Message, chained causes and the rendered traceback: everywhere a secret could surface."""
    return "".join(traceback.format_exception(exc)) + repr(exc.args)


def test_round_trip_and_ciphertext_hides_plaintext():
    ring = KeyRing([generate_key()])
    stored = ring.encrypt(TOKEN)
    assert TOKEN not in stored
    assert stored.isascii()
    assert ring.decrypt(stored) == TOKEN


def test_each_encryption_is_fresh():
    ring = KeyRing([generate_key()])
    assert ring.encrypt(TOKEN) != ring.encrypt(TOKEN)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_round_trip_property(plaintext):
    ring = KeyRing([generate_key(), generate_key()])
    assert ring.decrypt(ring.encrypt(plaintext)) == plaintext


def test_rotation_runbook():
    old, new = generate_key(), generate_key()
    stored_under_old = KeyRing([old]).encrypt(TOKEN)

    ring = KeyRing([new, old])
    assert ring.decrypt(stored_under_old) == TOKEN  # old rows still readable
    assert ring.needs_rotation(stored_under_old) is True
    fresh = ring.encrypt("written after the new key went first")
    assert ring.needs_rotation(fresh) is False

    rotated = ring.rotate(stored_under_old)
    assert ring.needs_rotation(rotated) is False
    new_only = KeyRing([new])
    assert new_only.decrypt(rotated) == TOKEN  # old key can now be dropped
    with pytest.raises(UndecryptableToken):
        new_only.decrypt(stored_under_old)


@pytest.mark.parametrize(
    "stored",
    [
        "not a token",
        "",
        "gAAAAAB" + "A" * 80,
        "ünïcode-" + TOKEN,
    ],
)
def test_undecryptable_values_raise_without_echo(stored):
    ring = KeyRing([generate_key()])
    for operation in (ring.decrypt, ring.rotate, ring.needs_rotation):
        with pytest.raises(UndecryptableToken) as info:
            operation(stored)
        said = _everything_said(info.value)
        if stored:
            assert stored not in said
        assert TOKEN not in said
        assert info.value.__cause__ is None and info.value.__suppress_context__


def test_tampered_and_foreign_tokens_are_undecryptable():
    ring = KeyRing([generate_key()])
    stored = ring.encrypt(TOKEN)
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    foreign = KeyRing([generate_key()]).encrypt(TOKEN)
    for bad in (tampered, foreign):
        with pytest.raises(UndecryptableToken):
            ring.decrypt(bad)


def test_type_errors_are_not_disguised():
    ring = KeyRing([generate_key()])
    with pytest.raises(TypeError):
        ring.encrypt(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ring.decrypt(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        KeyRing(generate_key())  # type: ignore[arg-type]  # a str, not a list


def test_lone_surrogate_plaintext_error_does_not_carry_the_text():
    ring = KeyRing([generate_key()])
    secret = "secret-\ud800-" + TOKEN
    with pytest.raises(ValueError) as info:
        ring.encrypt(secret)
    assert TOKEN not in _everything_said(info.value)


def test_repr_shows_no_key():
    key = generate_key()
    ring = KeyRing([key])
    assert key not in repr(ring) and key not in str(ring)
    assert len(ring) == 1


# --- from_settings: TOKEN_KEYS ---


def test_token_keys_newest_first_with_whitespace(tmp_path):
    old, new = generate_key(), generate_key()
    stored_old = KeyRing([old]).encrypt(TOKEN)
    ring = KeyRing.from_settings(f"  {new} ,\n {old},  ", str(tmp_path))
    assert len(ring) == 2
    assert ring.decrypt(stored_old) == TOKEN
    assert KeyRing([new]).decrypt(ring.encrypt(TOKEN)) == TOKEN  # newest encrypts
    assert not (tmp_path / KEY_FILE_NAME).exists()  # env keys never touch the key file


@pytest.mark.parametrize(
    "bad",
    [
        "this-is-my-very-secret-passphrase-please-dont-log-it",
        # Almost keys (fixed values so test ids are stable): truncated, or a stray character.
        "Un711Nhi1cnJVPdRLNqnNi9mVslyoCPvXnIPIn2eYq",
        "Un711Nhi1cnJVPdRLNqnNi9mVslyoCPvXnIP!n2eYqE=",
        "ключ-" + "z" * 39,
    ],
    ids=["passphrase", "truncated", "stray-char", "non-ascii"],
)
def test_bad_token_key_message_has_no_key_material(tmp_path, bad):
    good = generate_key()
    with pytest.raises(ValueError) as info:
        KeyRing.from_settings(f"{good},{bad}", str(tmp_path))
    said = _everything_said(info.value)
    assert "TOKEN_KEYS entry #2 of 2" in str(info.value)
    # No 8-character window of either key may appear anywhere in what the error shows.
    for key in (bad, good):
        windows = {key[i : i + 8] for i in range(len(key) - 7)}
        assert not [w for w in windows if w in said]


def test_token_keys_with_only_commas_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="contains no keys"):
        KeyRing.from_settings(" , ,", str(tmp_path))


# --- from_settings: key file ---


@pytest.mark.parametrize("token_keys", [None, "", "   "])
def test_key_file_created_0600_in_new_directory_and_reused(tmp_path, token_keys):
    instance = tmp_path / "instance" / "nested"
    ring = KeyRing.from_settings(token_keys, str(instance))
    key_file = instance / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(instance.stat().st_mode) & 0o077 == 0
    assert os.listdir(instance) == [KEY_FILE_NAME]  # no temporary file left behind

    stored = ring.encrypt(TOKEN)
    again = KeyRing.from_settings(token_keys, str(instance))
    assert again.decrypt(stored) == TOKEN
    assert KeyRing([key_file.read_text().strip()]).decrypt(stored) == TOKEN


def test_key_file_created_0600_even_with_permissive_umask(tmp_path):
    previous = os.umask(0)
    try:
        KeyRing.from_settings(None, str(tmp_path))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620])
def test_key_file_readable_or_writable_by_others_is_refused(tmp_path, mode):
    key = generate_key()
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_text(key + "\n")
    key_file.chmod(mode)
    with pytest.raises(ValueError, match="chmod 600") as info:
        KeyRing.from_settings(None, str(tmp_path))
    assert key not in _everything_said(info.value)


def test_key_file_with_several_keys_newest_first(tmp_path):
    old, new = generate_key(), generate_key()
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_text(f"# rotated 2025-01-01\n{new}\n\n{old}\n")
    key_file.chmod(0o600)
    ring = KeyRing.from_settings(None, str(tmp_path))
    assert ring.decrypt(KeyRing([old]).encrypt(TOKEN)) == TOKEN
    assert KeyRing([new]).decrypt(ring.encrypt(TOKEN)) == TOKEN


@pytest.mark.parametrize("content", ["", "\n\n", "not-a-fernet-key-but-a-secret-anyway\n"])
def test_bad_key_file_is_refused_without_echo(tmp_path, content):
    key_file = tmp_path / KEY_FILE_NAME
    key_file.write_text(content)
    key_file.chmod(0o600)
    with pytest.raises(ValueError) as info:
        KeyRing.from_settings(None, str(tmp_path))
    assert str(key_file) in str(info.value)
    if content.strip():
        assert content.strip() not in _everything_said(info.value)


def _start_and_encrypt(instance_path, barrier, results):
    """Child process: start up at the same moment as its siblings and encrypt a marker."""
    barrier.wait()
    ring = KeyRing.from_settings(None, instance_path)
    results.put(ring.encrypt(f"from {os.getpid()}"))


def test_concurrent_first_start_agrees_on_one_key(tmp_path, monkeypatch):
    # Slow key generation (inherited by the forked children) holds every process inside the
    # "no file yet, making one" window at once, so a check-then-write implementation loses.
    real_generate = crypto.generate_key

    def slow_generate_key():
        time.sleep(0.05)
        return real_generate()

    monkeypatch.setattr(crypto, "generate_key", slow_generate_key)
    ctx = multiprocessing.get_context("fork")
    processes = 8
    for round_no in range(3):
        instance = tmp_path / f"round{round_no}"
        barrier, results = ctx.Barrier(processes), ctx.Queue()
        workers = [
            ctx.Process(target=_start_and_encrypt, args=(str(instance), barrier, results))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=20)
        # A child that failed to start up (e.g. read a half-written key file) exits non-zero.
        assert [w.exitcode for w in workers] == [0] * processes
        stored = [results.get(timeout=5) for _ in workers]

        keys = (instance / KEY_FILE_NAME).read_text().split()
        assert len(keys) == 1
        file_ring = KeyRing(keys)
        assert sorted(file_ring.decrypt(s) for s in stored) == sorted(
            f"from {w.pid}" for w in workers
        )
        assert os.listdir(instance) == [KEY_FILE_NAME]


# --- fingerprint ---


def test_fingerprint_is_keyed_stable_and_hides_secret():
    key = os.urandom(32)
    fp = fingerprint(TOKEN, key)
    assert fp == fingerprint(TOKEN, key)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert TOKEN not in fp
    assert fp != fingerprint(TOKEN, os.urandom(32))
    assert fp != fingerprint(TOKEN + "x", key)
    # Known-answer check against RFC 4231 test case 2 so the construction is HMAC-SHA256.
    assert fingerprint("what do ya want for nothing?", b"Jefe") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_fingerprint_refuses_empty_key():
    with pytest.raises(ValueError):
        fingerprint(TOKEN, b"")
