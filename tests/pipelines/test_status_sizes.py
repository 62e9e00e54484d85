"""``solarsync status`` prints stored bytes in binary units labelled as binary (KiB, MiB...)."""

from __future__ import annotations

import pytest

from pipelines.commands.common import size as _size


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),  # never "1024.0 KiB"
        (26_200_000, "25.0 MiB"),  # 26.2 million bytes: not "25.0 MB"
        (26_214_400, "25.0 MiB"),
        (5 * 1024**3 + 512 * 1024**2, "5.5 GiB"),
        (3 * 1024**4, "3.0 TiB"),
        (2048 * 1024**4, "2048.0 TiB"),  # the largest unit keeps counting
    ],
)
def test_size_uses_binary_units_named_as_such(n: int, text: str) -> None:
    assert _size(n) == text
