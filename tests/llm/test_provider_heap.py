"""An LLM SDK's first import is frozen out of full garbage collections (`atom.heap.settle`): its ~170,000
objects would otherwise be walked at every full collection, a pause every live chat waits out."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import gc, sys
from atom.llm.providers import build_provider
assert "{module}" not in sys.modules
frozen = gc.get_freeze_count()
build_provider(kind="{kind}", name="p", base_url="http://127.0.0.1:9", api_key="k", timeout=1.0)
first = gc.get_freeze_count() - frozen
build_provider(kind="{kind}", name="q", base_url="http://127.0.0.1:9", api_key="k", timeout=1.0)
again = gc.get_freeze_count() - frozen - first
print(first, again)
"""


@pytest.mark.parametrize(
    ("kind", "module"), [("openai", "atom.llm.providers.openai_compat"), ("anthropic", "atom.llm.providers.anthropic")]
)
def test_the_first_provider_of_a_kind_freezes_its_sdk_once(kind: str, module: str) -> None:
    code = PROBE.format(kind=kind, module=module)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first, again = (int(n) for n in done.stdout.split())
    assert first > 20_000  # the SDK's modules and classes, now exempt from full collections
    assert again == 0  # one settle per SDK: a later provider of the kind does not pause the process
