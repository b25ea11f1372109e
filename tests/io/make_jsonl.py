#!/usr/bin/env python3
"""Writes N JSON Lines rows for the pack round-trip test: unicode from
several scripts and emoji, escapes, newlines and tabs inside prompts, and
optional fields (id, system, max_new_tokens, seed) present, empty or absent
in varying combinations. Deterministic (seeded)."""
import json
import random
import sys

n = int(sys.argv[1])
kind = sys.argv[2] if len(sys.argv) > 2 else "prompt"
rng = random.Random(1234)
words = ["héllo", "мир", "世界", "😀🚀", "naïve", "\"quoted\"", "tab\there", "new\nline",
         "back\\slash", "عربى", "ελληνικά", "x" * 50, "", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
out = sys.stdout
for i in range(n):
    text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) or "p"
    row = {}
    if kind == "messages":
        row["messages"] = [{"role": "system", "content": "sé"},
                           {"role": "user", "content": text}]
    else:
        row["prompt"] = text
    if i % 3 != 0:
        row["id"] = f"id-{i}-{rng.choice(words)}" if i % 7 else ""
    if i % 4 == 1:
        row["system"] = rng.choice(words)
    if i % 5 == 2:
        row["max_new_tokens"] = rng.randint(0, 4096)
    if i % 6 == 3:
        row["seed"] = rng.randint(0, 2**63 - 1)
    out.write(json.dumps(row, ensure_ascii=rng.random() < 0.3) + "\n")
