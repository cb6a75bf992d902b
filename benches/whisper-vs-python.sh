#!/usr/bin/env bash
# update_many throughput, Charcoal's store vs Python's whisper 1.1.10, same workload, one run.
# Usage: benches/whisper-vs-python.sh [BATCHES]   (needs .ci/setup-whisper.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
batches=${1:-2000}
python=${CHARCOAL_WHISPER_PYTHON:-/opt/charcoal-interop/whisper/bin/python}
cargo build --release -q -p charcoal-benches --example whisper_workload
ours=$(target/release/examples/whisper_workload "$batches")
theirs=$("$python" - "$batches" <<'PY'
import os, sys, tempfile, time
import whisper
batches = int(sys.argv[1])
d = tempfile.mkdtemp()
path = os.path.join(d, "w.wsp")
whisper.create(path, [(10, 2160), (60, 10080), (600, 262800)])
start_clock = 1700000000
started = time.perf_counter()
for batch in range(batches):
    now = start_clock + 3600 * batch
    whisper.update_many(path, [(now - 10 * i, float(batch * 360 + i)) for i in range(360)], now=now)
elapsed = time.perf_counter() - started
total = batches * 360
print("python whisper update_many: %d points in %.4f s = %.0f points/s" % (total, elapsed, total / elapsed))
os.unlink(path)
PY
)
echo "$ours"
echo "$theirs"
rate() { sed -E 's/.*= ([0-9]+) points\/s/\1/' <<<"$1"; }
echo "ratio: $(( $(rate "$ours") / $(rate "$theirs") ))x"
