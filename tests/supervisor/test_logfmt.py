"""Child output handling: bounded line splitting, secret masking, text and JSON formats."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ingestor.supervisor.logfmt import (
    TRUNCATED_MARK,
    LineSplitter,
    PemBlockFilter,
    SecretMasker,
    format_line,
)


def split_all(chunks: list[bytes], max_bytes: int = 64 * 1024) -> list[str]:
    splitter = LineSplitter(max_bytes)
    out: list[str] = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    return out + splitter.flush()


def test_lines_split_across_chunks_are_joined() -> None:
    assert split_all([b"he", b"llo\nwor", b"ld\n", b"tail"]) == ["hello", "world", "tail"]


def test_crlf_and_invalid_utf8_do_not_break_lines() -> None:
    assert split_all([b"a\r\n\xff\xfeb\n"]) == ["a", "\ufffd\ufffdb"]


def test_a_long_line_is_truncated_and_the_rest_discarded() -> None:
    lines = split_all([b"x" * 50, b"y" * 50, b"z" * 50 + b"\nnext\n"], max_bytes=64)
    assert lines == ["x" * 50 + "y" * 14 + TRUNCATED_MARK, "next"]


def test_the_buffer_never_grows_past_the_cap() -> None:
    splitter = LineSplitter(100)
    for _ in range(1000):
        splitter.feed(b"a" * 37)
        assert len(splitter._buf) <= 100 + 37


@given(
    st.lists(
        st.text(
            # lines decoded from a child's bytes never hold lone surrogates
            alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
            max_size=40,
        ),
        max_size=20,
    ),
    st.integers(1, 30),
)
def test_splitting_is_independent_of_chunk_boundaries(lines: list[str], step: int) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    assert split_all(chunks) == lines


def test_masker_replaces_known_values_and_url_passwords() -> None:
    masker = SecretMasker(["hunter2-secret", "abc"])
    out = masker.mask("pw hunter2-secret url postgresql://u:other@h/db abc")
    assert "hunter2-secret" not in out
    assert "other" not in out
    assert out.endswith("abc")  # values shorter than 4 characters are not treated as secrets


def test_masker_hides_a_secret_cut_by_truncation() -> None:
    secret = "s3cr3t-value-0123456789"
    splitter = LineSplitter(40)
    line = splitter.feed(("x" * 30 + secret + "\n").encode())[0]
    masked = SecretMasker([secret]).mask(line)
    assert secret[:10] not in masked
    assert masked.endswith("***" + TRUNCATED_MARK)


def test_pem_block_printed_over_lines_is_hidden() -> None:
    pem = PemBlockFilter()
    lines = [
        "loading key",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "-----END RSA PRIVATE KEY-----",
        "done",
    ]
    out = [pem.filter(line) for line in lines]
    assert out[0] == "loading key" and out[-1] == "done"
    assert not any("MIIEow" in line for line in out)


def test_text_format_prefixes_the_role() -> None:
    assert format_line("rest", "hello", "text", SecretMasker()) == "[rest] hello"


def test_json_format_wraps_plain_lines() -> None:
    record = json.loads(format_line("ws", "plain text", "json", SecretMasker(), now=0))
    assert record == {"ts": "1970-01-01T00:00:00.000Z", "role": "ws", "line": "plain text"}


def test_json_format_nests_json_lines_and_masks_inside() -> None:
    child = json.dumps(
        {"level": "INFO", "msg": "token topsecret-1", "password": "pw-value", "n": 3}
    )
    record = json.loads(format_line("rag", child, "json", SecretMasker(["topsecret-1"])))
    assert record["role"] == "rag"
    assert record["line"]["level"] == "INFO"
    assert record["line"]["n"] == 3
    assert record["line"]["msg"] == "token ***"
    assert record["line"]["password"] == "***"


def test_json_format_keeps_non_object_json_as_a_string() -> None:
    record = json.loads(format_line("rest", "[1, 2]", "json", SecretMasker()))
    assert record["line"] == "[1, 2]"
