"""How many SMS parts a text takes: GSM 03.38 7-bit or UCS-2, with concatenation headers."""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters reached through the escape code: each costs two septets.
GSM_EXTENSION = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsParts:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int
    per_part: int

    def describe(self) -> str:
        if self.units == 0:
            return "empty"
        noun = "part" if self.parts == 1 else "parts"
        return f"{self.units} chars, {self.encoding}, {self.parts} SMS {noun}"


def count_parts(text: str) -> SmsParts:
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        units = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        return SmsParts(encoding, 0, 0, single)
    if units <= single:
        return SmsParts(encoding, units, 1, single)
    return SmsParts(encoding, units, -(-units // multi), multi)
