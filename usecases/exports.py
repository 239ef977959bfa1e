"""The one writer of exported JSON: `smsdesk export ... --format jsonl`, the TUI's log export, and
every JSON the CLI prints (a number's evidence record among them), so the same rows are the same
bytes whichever front end wrote them.

Readable UTF-8 with every character that could drive or reorder a terminal escaped. json.dumps
(ensure_ascii=False) escapes the C0 controls (ESC becomes \\u001b) but writes DEL and the C1
controls raw, and a lone U+009B is a CSI to many terminals; bidi embeddings, overrides and
isolates reorder what a terminal shows ("Shop\\u202egnp.exe" reads "Shopexe.png"); a lone
surrogate cannot be written as UTF-8 at all. Escaping those too is lossless: the same JSON value.
(ensure_ascii=True is inert as well, but writes every accent and emoji of a message as escapes.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

_RAW_CONTROLS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def inert_json(data: Any, **options: Any) -> str:
    """JSON with every control, bidi control and lone surrogate escaped: the same data, inert on a terminal."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One inert JSON object per line; how many lines were written."""
    count = 0
    for row in rows:
        out.write(inert_json(row) + "\n")
        count += 1
    return count
