#!/usr/bin/env python3
"""Copies the conformance transcripts T01..T35 of shared/spec/munin.md section 9 (recorded
from Debian's munin-node 2.0.73) into transcripts/Tnn.txt, one file each, unchanged.
Usage: extract-transcripts.py /path/to/shared/spec/munin.md"""
import re, sys, pathlib
text = pathlib.Path(sys.argv[1]).read_text()
out = pathlib.Path(__file__).parent / "transcripts"
out.mkdir(exist_ok=True)
for m in re.finditer(r"^#### (T\d+)\. (.*?)\n\n```\n(.*?)```", text, re.S | re.M):
    (out / f"{m.group(1)}.txt").write_text(f"# {m.group(1)}. {m.group(2)}\n" + m.group(3))
