#!/usr/bin/env bash
# ChaCha20-Poly1305, seal and open with the `poly1305` crate's two x86 backends, measured back to
# back in one run: `avx2` (its default: runtime detection, AVX2 when the CPU has it) and `soft`
# (`--cfg poly1305_backend="soft"`, the portable 64-bit code). Each backend is a separate build of
# the seal_open criterion bench (crates/mqseal/benches) in its own target directory, so neither
# disturbs the other nor the workspace's usual build.
#
#   scripts/bench/poly1305-backends.sh              # the sizes of the bench (16 B .. 64 KiB)
#   scripts/bench/poly1305-backends.sh --quick      # shorter measurement, noisier
#
# The result decides the `rustflags` in .cargo/config.toml; see BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
quick=()
[ "${1:-}" = "--quick" ] && quick=(--warm-up-time 1 --measurement-time 2)
filter='^(primitive/chacha20poly1305/[0-9]+|mqseal_(signed|group-mac)/(seal|open)/[0-9]+)$'
declare -A flags=([avx2]="" [soft]='--cfg poly1305_backend="soft"')

bench() { # backend, cargo args...
  local backend=$1
  shift
  env -u CARGO_ENCODED_RUSTFLAGS RUSTFLAGS="${flags[$backend]}" \
    CARGO_TARGET_DIR="$PWD/target/poly1305-$backend" \
    cargo bench -p mqseal --bench seal_open --locked "$@"
}
for backend in avx2 soft; do
  echo "== building the bench with the $backend backend (RUSTFLAGS='${flags[$backend]}')"
  bench "$backend" --no-run 2>&1 | grep -E "^(error|warning: unused)|Finished" || true
done
for backend in avx2 soft; do
  echo "== measuring the $backend backend"
  bench "$backend" -- "${quick[@]}" "$filter" 2>/dev/null | grep -E "^[a-z_-]+/|time:" || true
done

python3 - <<'PY'
import json, pathlib
def median(backend, bench_id):
    p = pathlib.Path(f"target/poly1305-{backend}/criterion/{bench_id}/new/estimates.json")
    return json.loads(p.read_text())["median"]["point_estimate"] if p.exists() else None
rows = [("chacha20poly1305", f"primitive/chacha20poly1305/{n}", n) for n in (16, 64, 1024, 4096, 16384, 65536)]
for profile in ("signed", "group-mac"):
    for op in ("seal", "open"):
        rows += [(f"{op} {profile}", f"mqseal_{profile}/{op}/{n}", n) for n in (16, 64, 1024, 65536)]
print(f"\n{'operation':<18} {'bytes':>6} {'avx2 ns':>10} {'soft ns':>10} {'avx2/soft':>10}")
for name, bench_id, n in rows:
    a, s = median("avx2", bench_id), median("soft", bench_id)
    if a is None or s is None:
        continue
    print(f"{name:<18} {n:>6} {a:>10.0f} {s:>10.0f} {a / s:>10.2f}")
print("avx2/soft > 1: the soft backend is faster (medians of this run)")
PY
