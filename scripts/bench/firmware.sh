#!/usr/bin/env bash
# The firmware budget per build option (BENCHMARKS.md, "Firmware budget"): for each option the
# no_std library is built for thumbv7em-none-eabihf in its own target directory, the budget
# firmware (bindings/c/firmware/budget.c, signed seal + open, and its seal-only build) is linked,
# measured with arm-none-eabi-size and run in QEMU mps2-an386 with -icount shift=0.
#   scripts/bench/firmware.sh            # every option (about a minute of build each, 2 cores)
#   scripts/bench/firmware.sh s z        # some of them
# Options: s (the firmware profile as committed: opt-level s, compact SHA-2, no Curve25519
# tables), z (opt-level z), o2 (opt-level 2), tables (+ feature precomputed-tables),
# unrolled-sha2 (sha2's default unrolled rounds: the config's --cfg removed), no-lto (lto off,
# 16 codegen units), arena (+ feature arena: mqseal's heap a 16 KiB static arena handed over with
# mqseal_heap_init, measured with mqseal_heap_usage; the arena is in the RAM column).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD
out=$root/target/firmware-bench
mkdir -p "$out"
apt_install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm binutils-arm-none-eabi
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
python3 bindings/c/tests/vectors_to_c.py spec/vectors "$out/vectors.h" >/dev/null

sizes() { # elf -> "flash ram"
  arm-none-eabi-size -A "$1" | awk '
    $1 ~ /^\.(isr_vector|text|rodata|ARM\.extab|ARM\.exidx|init_array|data)$/ { flash += $2 }
    $1 ~ /^\.(data|bss)$/ { ram += $2 }
    END { print flash, ram }'
}

options=("$@")
((${#options[@]})) || options=(s z o2 tables unrolled-sha2 no-lto arena)
printf '| option | flash seal+open | RAM | flash seal-only | heap peak | stack seal | stack open | insn seal | insn open (first / steady) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for option in "${options[@]}"; do
  env=() features=() make_args=()
  case $option in
    s) ;;
    z) env=(CARGO_PROFILE_FIRMWARE_OPT_LEVEL=z) ;;
    o2) env=(CARGO_PROFILE_FIRMWARE_OPT_LEVEL=2) ;;
    tables) features=(--features precomputed-tables) ;;
    unrolled-sha2) env=("RUSTFLAGS= ") ;;
    no-lto) env=(CARGO_PROFILE_FIRMWARE_LTO=false CARGO_PROFILE_FIRMWARE_CODEGEN_UNITS=16) ;;
    arena) features=(--features arena) make_args=(ARENA=1) ;;
    *) echo "unknown option $option" >&2; exit 2 ;;
  esac
  env "${env[@]}" cargo rustc -p mqseal-ffi --lib --crate-type staticlib --no-default-features \
    "${features[@]}" --target thumbv7em-none-eabihf --profile firmware --locked --quiet \
    --target-dir "$out/target-$option"
  lib=$out/target-$option/thumbv7em-none-eabihf/firmware/libmqseal_ffi.a
  make -s -C bindings/c/firmware MQSEAL_LIB="$lib" GEN="$out" BUILD="$out" VARIANT="-$option" \
    "${make_args[@]}" \
    "$out/budget-$option.elf" "$out/budget-seal-only-$option.elf"
  timeout 600 qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -icount shift=0 -kernel "$out/budget-$option.elf" \
    >"$out/budget-$option.log" 2>&1 || { cat "$out/budget-$option.log"; exit 1; }
  v() { sed -n "s/^$1=//p" "$out/budget-$option.log"; }
  read -r flash ram < <(sizes "$out/budget-$option.elf")
  read -r flash_seal _ < <(sizes "$out/budget-seal-only-$option.elf")
  printf '| %s | %s B | %s B | %s B | %s B | %s B | %s B | %s | %s / %s |\n' "$option" "$flash" \
    "$ram" "$flash_seal" "$(v heap_peak)" "$(v stack_seal_signed_first)" \
    "$(v stack_open_signed_first)" "$(v insn_seal_signed)" "$(v insn_open_signed_first)" \
    "$(v insn_open_signed_steady)"
done
