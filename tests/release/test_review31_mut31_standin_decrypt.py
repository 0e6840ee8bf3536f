"""The `pulumi` stand-in's ciphertext (tests/fixtures/release/pulumi_standin.py) is refused as the CLI refuses what its
secrets provider did not write: another version, a tampered tag, text that is no base64. Found by a mutation audit of
the stand-in: any of these checks could be dropped with every earlier test passing, so a test could pass on a value
the real CLI fails to decrypt."""

from __future__ import annotations

import base64

from fixtures.release.pulumi_standin import decrypt, encrypt

VALUE = "cf-token-0a1b2c3d4e5f"


def test_what_encrypt_made_decrypts_and_nothing_altered_does() -> None:
    sealed = encrypt(VALUE)
    assert decrypt(sealed) == VALUE
    version, nonce, body = sealed.split(":")
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1   # one bit of the tag
    assert decrypt(f"{version}:{nonce}:{base64.b64encode(bytes(raw)).decode()}") is None
    assert decrypt(f"v2:{nonce}:{body}") is None
    assert decrypt(f"{version}:{nonce}:{body[:4]}*{body[4:]}") is None   # a stray character: not read leniently
