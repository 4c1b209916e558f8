"""schemathesis hooks of `.ci/fuzz.sh` (loaded through `.ci/schemathesis.toml`).

Stateful phase only: each call's `Idempotency-Key` is made unique. Hypothesis draws few
distinct short strings, so generated keys repeat across calls, and Carrot rightly answers a
key reused with another request with 422 `idempotency_key_reused`; in a chain of calls that
stops nearly every trade at its first POST. A valid key keeps what was generated, with a
serial number appended (still 1 to 255 characters); a key generated invalid is left as it
is. The other phases send the keys as generated, reuse included.
"""

import itertools

import schemathesis

IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_serial = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or meta.phase.name != "stateful" or not case.headers:
        return
    key = case.headers.get(IDEMPOTENCY_KEY)
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        return
    suffix = f"~{next(_serial)}"
    case.headers[IDEMPOTENCY_KEY] = key[: MAX_KEY_LENGTH - len(suffix)] + suffix
