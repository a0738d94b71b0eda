#!/usr/bin/env bash
# The C library on bare metal: mqseal-ffi without `std` builds as a static library for
# thumbv7em-none-eabihf (Cortex-M4F/M7) and riscv32imc-unknown-none-elf (ESP32-C3) with the
# firmware profile; a firmware (bindings/c/firmware) linked against the Cortex-M library runs in
# QEMU (mps2-an386, semihosting) and replays the spec vectors (main.c, "N passed, 0 failed"),
# and the budget firmware (budget.c) measures heap, stack and instruction counts. Its flash and
# RAM come from arm-none-eabi-size. The same firmware is also linked against the library built
# with the feature `arena` (mqseal's heap a 16 KiB static arena handed over with
# mqseal_heap_init, not malloc) and must pass too. Figures: BENCHMARKS.md, "Firmware budget"
# (scripts/bench/firmware.sh measures every build option).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD
out=target/firmware
mkdir -p "$out"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

have_target() { rustup target list --installed 2>/dev/null | grep -qx "$1"; }
for target in thumbv7em-none-eabihf riscv32imc-unknown-none-elf; do
  have_target "$target" || rustup target add "$target" >/dev/null 2>&1 || true
done

# The library for each target (staticlib only: a cdylib makes no sense without an OS).
build_lib() { # target, extra cargo arguments...
  local target=$1
  shift
  cargo rustc -p mqseal-ffi --lib --crate-type staticlib --no-default-features \
    --target "$target" --profile firmware --locked --quiet "$@"
}

if have_target riscv32imc-unknown-none-elf; then
  if build_lib riscv32imc-unknown-none-elf; then
    ok "no_std static library for riscv32imc-unknown-none-elf (ESP32-C3)"
  else
    fail "no_std static library for riscv32imc-unknown-none-elf"
  fi
else
  echo "NOTICE: could not add rustup target riscv32imc-unknown-none-elf; skipping its build"
fi

if ! have_target thumbv7em-none-eabihf; then
  echo "NOTICE: could not add rustup target thumbv7em-none-eabihf; skipping the firmware build and QEMU run"
  echo "firmware: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi
# Both heaps share cargo's output path: each library is copied out after its build.
build_lib thumbv7em-none-eabihf
lib=$root/$out/libmqseal_ffi.a
cp target/thumbv7em-none-eabihf/firmware/libmqseal_ffi.a "$lib"
build_lib thumbv7em-none-eabihf --features arena
lib_arena=$root/$out/libmqseal_ffi-arena.a
cp target/thumbv7em-none-eabihf/firmware/libmqseal_ffi.a "$lib_arena"
# The no_std code (panic handler, allocators, critical section) is linted only in these builds.
for features in "" arena; do
  cargo clippy -p mqseal-ffi --lib --no-default-features ${features:+--features $features} \
    --target thumbv7em-none-eabihf --locked --quiet -- -D warnings
done
ok "no_std static libraries for thumbv7em-none-eabihf (Cortex-M4F): malloc and arena heap"

apt_install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm binutils-arm-none-eabi
# vectors.h from the spec's JSON vectors, at build time (never hand-copied bytes).
python3 bindings/c/tests/vectors_to_c.py spec/vectors "$out/vectors.h"
make -s -C bindings/c/firmware MQSEAL_LIB="$lib" GEN="$root/$out" BUILD="$root/$out"
make -s -C bindings/c/firmware MQSEAL_LIB="$lib_arena" GEN="$root/$out" BUILD="$root/$out" \
  VARIANT=-arena ARENA=1 "$root/$out/test-arena.elf" "$root/$out/budget-arena.elf"

# Runs a firmware image in QEMU; the guest's exit status (semihosting) is QEMU's.
qemu() { # elf, log, extra QEMU arguments...
  local elf=$1 log=$2
  shift 2
  timeout 600 qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none \
    -serial none -semihosting-config enable=on,target=native "$@" -kernel "$elf" >"$log" 2>&1
}

if qemu "$out/test.elf" "$out/test.log" && grep -Eq '^[1-9][0-9]* passed, 0 failed$' "$out/test.log"; then
  ok "firmware test in QEMU mps2-an386: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/test.log")"
else
  cat "$out/test.log"
  fail "firmware test in QEMU mps2-an386"
fi
grep -E '^mqseal .* firmware test' "$out/test.log" || true
if qemu "$out/test-arena.elf" "$out/test-arena.log" &&
  grep -Eq '^[1-9][0-9]* passed, 0 failed$' "$out/test-arena.log"; then
  ok "firmware test in QEMU, arena heap: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/test-arena.log")"
  grep -E '^arena: ' "$out/test-arena.log" || true
else
  cat "$out/test-arena.log"
  fail "firmware test in QEMU, arena heap"
fi

# The budget: flash = every section loaded into flash (vectors, code, constants, .data's
# initial values), RAM = .data + .bss (the stack and the heap are reserved regions, measured).
sizes() { # elf -> "flash ram"
  arm-none-eabi-size -A "$1" | awk '
    $1 ~ /^\.(isr_vector|text|rodata|ARM\.extab|ARM\.exidx|init_array|data)$/ { flash += $2 }
    $1 ~ /^\.(data|bss)$/ { ram += $2 }
    END { print flash, ram }'
}
for image in budget budget-seal-only budget-arena; do
  read -r flash ram < <(sizes "$out/$image.elf")
  echo "$image: flash=$flash ram=$ram"
done
if qemu "$out/budget.elf" "$out/budget.log" -icount shift=0; then
  cat "$out/budget.log"
  ok "budget firmware in QEMU (signed seal + open, 8 senders)"
else
  cat "$out/budget.log"
  fail "budget firmware in QEMU"
fi
read -r flash ram < <(sizes "$out/budget.elf")
value() { sed -n "s/^$1=//p" "$out/budget.log"; }
heap=$(value heap_peak)
stack_seal=$(value stack_seal_signed_first)
stack_open=$(value stack_open_signed_first)
goal() { if [ "${1:-999999}" -le "$2" ]; then echo "goal <= $2 met"; else echo "goal <= $2 NOT met"; fi; }
echo "budget, signed seal + open (Cortex-M4F, firmware profile):"
echo "  flash $flash B ($(goal "$flash" 98304)), RAM (.data + .bss) $ram B"
echo "  heap peak $heap B for 1 sealer + 1 opener with 8 senders' windows ($(goal "$heap" 8192))"
echo "  peak stack: mqseal_seal $stack_seal B, mqseal_open $stack_open B ($(goal "$(( ${stack_seal:-999999} > ${stack_open:-999999} ? ${stack_seal:-999999} : ${stack_open:-999999} ))" 8192))"
echo "  instructions (QEMU -icount, estimates): seal $(value insn_seal_signed), open $(value insn_open_signed_steady)"
if qemu "$out/budget-arena.elf" "$out/budget-arena.log" -icount shift=0 &&
  grep -qx 'budget: ok' "$out/budget-arena.log"; then
  read -r flash_arena ram_arena < <(sizes "$out/budget-arena.elf")
  echo "budget, arena heap (16 KiB static arena, in RAM below): flash $flash_arena B, RAM $ram_arena B," \
    "heap peak $(sed -n 's/^heap_peak=//p' "$out/budget-arena.log") B (mqseal_heap_usage)"
  ok "budget firmware in QEMU, arena heap"
else
  cat "$out/budget-arena.log"
  fail "budget firmware in QEMU, arena heap"
fi
# Flash is the one figure guarded: code growth past the goal fails the step. The heap and stack
# goals are not met today (BENCHMARKS.md, "Firmware budget", says what dominates).
if [ -n "$heap" ] && [ -n "$stack_open" ] && [ "$flash" -le 98304 ]; then
  ok "budget: flash of signed seal + open within 96 KiB, every figure measured"
else
  fail "budget: flash above 96 KiB or a figure missing"
fi

echo "firmware: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
