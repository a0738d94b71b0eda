#!/usr/bin/env bash
# The C bindings (bindings/c): the committed header equals what cbindgen 0.29.4 generates; the C
# tests (every spec vector, round trips, negative cases, interop with Python-sealed messages; and
# bad input: test_bad_input.c) pass plain, under AddressSanitizer + UBSan, and under valgrind with
# no leaks; the libmosquitto examples exchange sealed messages through a Mosquitto started here on
# a free 127.0.0.1 port, then through one configured as the seeds' walkthrough (its v1
# certificates, require_certificate, password_file, ACL).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib.sh
root=$PWD
out=target/c
mkdir -p "$out"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

apt_install gcc make pkg-config libmosquitto-dev mosquitto mosquitto-clients valgrind

# --- the header ----------------------------------------------------------------------------------
cbindgen=target/tools/bin/cbindgen
if ! "$cbindgen" --version 2>/dev/null | grep -qx "cbindgen 0.29.4"; then
  echo "installing cbindgen 0.29.4 into target/tools"
  cargo install cbindgen --version 0.29.4 --locked --debug --quiet --root target/tools
fi
(cd bindings/c && "$root/$cbindgen" --quiet --config cbindgen.toml --crate mqseal-ffi \
  --output "$root/$out/mqseal.h")
if cmp -s "$out/mqseal.h" bindings/c/include/mqseal.h; then
  ok "bindings/c/include/mqseal.h is what cbindgen generates"
else
  diff -u bindings/c/include/mqseal.h "$out/mqseal.h" | head -40 || true
  fail "bindings/c/include/mqseal.h is stale: regenerate it (see bindings/c/README.md)"
fi

# --- the library and the tests -------------------------------------------------------------------
cargo build -p mqseal-ffi --locked --quiet
lib=target/debug/libmqseal_ffi.a
python3 bindings/c/tests/vectors_to_c.py spec/vectors "$out/vectors.h"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -g -Ibindings/c/include "-I$out")
libs=("$lib" -lpthread -ldl -lm)
gcc "${cflags[@]}" -O1 bindings/c/tests/test_mqseal.c "${libs[@]}" -o "$out/test_mqseal"
gcc "${cflags[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=all bindings/c/tests/test_mqseal.c "${libs[@]}" -o "$out/test_mqseal_asan"
# Bad input: invalid topics, oversized payloads (a reserved, untouched mapping), garbage bytes.
gcc "${cflags[@]}" -O1 bindings/c/tests/test_bad_input.c "${libs[@]}" -o "$out/test_bad_input"
gcc "${cflags[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=all bindings/c/tests/test_bad_input.c "${libs[@]}" \
  -o "$out/test_bad_input_asan"

# Python-sealed messages for the C side, with the independent reference implementation and the
# Python binding: the venv of 50-python.sh (which has the built wheel installed) when it exists,
# else the one of 40-spec-conformance.sh (reference implementation only).
venv=target/py-venv
[ -x "$venv/bin/python" ] || venv=target/venv-spec
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { apt_install python3-venv; python3 -m venv "$venv"; }
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "cryptography>=42"
"$venv/bin/python" bindings/c/tests/interop.py seal "$out/python-sealed.txt"
interop=(--interop-open "$out/python-sealed.txt" --interop-seal "$out/c-sealed.txt")

run() { # name, command...
  local name=$1 log="$out/$1.log"
  shift
  if "$@" >"$log" 2>&1; then
    ok "$name: $(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
  else
    cat "$log"
    fail "$name"
  fi
}
run c-tests "$out/test_mqseal" "${interop[@]}"
grep -E "^interop" "$out/c-tests.log" || true
run c-tests-asan-ubsan env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$out/test_mqseal_asan" "${interop[@]}"
run c-tests-valgrind valgrind --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=all --show-leak-kinds=all "$out/test_mqseal" "${interop[@]}"
grep -E "ERROR SUMMARY|in use at exit" "$out/c-tests-valgrind.log" || true
run c-bad-input "$out/test_bad_input"
run c-bad-input-asan-ubsan env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$out/test_bad_input_asan"
run c-bad-input-valgrind valgrind --error-exitcode=1 --leak-check=full \
  --errors-for-leak-kinds=all --show-leak-kinds=all "$out/test_bad_input"
run interop-c-to-python "$venv/bin/python" bindings/c/tests/interop.py open "$out/c-sealed.txt"

# The seal/open rate program builds and runs (figures: scripts/bench/bindings.sh, BENCHMARKS.md).
make -s -C bindings/c/bench MQSEAL_LIB="$root/$lib" BUILD="$root/$out/bench"
if rates=$("$out/bench/bench_rate" signed 64 50) && grep -Eq '^seal_per_s=[0-9]+ open_per_s=[0-9]+$' <<<"$rates"; then
  ok "bindings/c/bench/bench_rate runs (debug library, not a figure: $rates)"
else
  fail "bindings/c/bench/bench_rate"
fi

# --- the libmosquitto examples through a real broker ---------------------------------------------
make -s -C examples/c MQSEAL_LIB="$root/$lib" BUILD="$root/$out/examples"
broker_dir=$(mktemp -d)
chmod 755 "$broker_dir"
broker_pid=
sub_pid=
cleanup() {
  [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  rm -rf "$broker_dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$broker_dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stdout
log_type all
CONF
chmod 644 "$broker_dir/mosquitto.conf"
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto_bin" -c "$broker_dir/mosquitto.conf" >"$out/mosquitto.log" 2>&1 &
broker_pid=$!
# Wait (bounded) until the broker accepts connections; a safety net, not a timing assertion.
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$broker_pid" 2>/dev/null || break
  sleep 0.1
done

hex32() { python3 -c "print(bytes([$1]) .hex() * 32)"; }
seed=$(hex32 0x61)
key="demo/#:1:$(hex32 0x62)"
bin=$out/examples
publisher=$("$bin/mqseal_pub" -s "$seed" -P)
rm -f "$broker_dir/seq"
# A broker-side eavesdropper: what any plain MQTT client (and the broker) sees.
timeout 60 mosquitto_sub -h 127.0.0.1 -p "$port" -i eavesdropper -t 'demo/#' -C 5 -F '%p' \
  >"$out/eavesdropper.bin" 2>&1 &
spy_pid=$!
# -a 300: a maximum age, so the subscriber refuses messages without a timestamp (v2 publishers
# timestamp by default; this checks that the example's timestamps survive the broker).
timeout 60 "$bin/mqseal_sub" -p "$port" -k "$key" -T "$publisher" -t 'demo/#' -n 4 -a 300 \
  >"$out/subscriber.log" 2>&1 &
sub_pid=$!
# Wait (bounded) until both are subscribed: the subscriber prints "ready" on its SUBACK, the
# broker logs the eavesdropper's.
for _ in $(seq 300); do
  grep -q '^ready' "$out/subscriber.log" 2>/dev/null \
    && grep -q 'Sending SUBACK to eavesdropper' "$out/mosquitto.log" && break
  kill -0 "$sub_pid" 2>/dev/null || break
  sleep 0.1
done
# Two runs of the publisher: the second resumes its sequence numbers from the reserved block.
"$bin/mqseal_pub" -p "$port" -s "$seed" -k "$key" -t demo/plant/7 -m "secret reading 21.5" \
  -n 2 -q "$broker_dir/seq" >"$out/publisher.log" 2>&1 || fail "publisher (first run)"
# A forgery straight through the broker: refused, never printed as a reading.
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t demo/plant/7 -m '{"temp": 99}'
"$bin/mqseal_pub" -p "$port" -s "$seed" -k "$key" -t demo/plant/7 -m "secret reading 21.6" \
  -n 2 -q "$broker_dir/seq" >>"$out/publisher.log" 2>&1 || fail "publisher (second run)"
if wait "$sub_pid"; then sub_status=0; else sub_status=$?; fi
sub_pid=
wait "$spy_pid" || true
cat "$out/publisher.log" "$out/subscriber.log"
if [ "$sub_status" -eq 0 ] \
  && grep -q '^demo/plant/7: secret reading 21.5 #1 (seq 0,' "$out/subscriber.log" \
  && grep -q '^demo/plant/7: secret reading 21.5 #2 (seq 1,' "$out/subscriber.log" \
  && grep -q '^demo/plant/7: secret reading 21.6 #1 (seq 1000,' "$out/subscriber.log" \
  && grep -q '^demo/plant/7: secret reading 21.6 #2 (seq 1001,' "$out/subscriber.log" \
  && grep -q '^refused demo/plant/7: unsupported_version' "$out/subscriber.log" \
  && ! grep -q 'temp' "$out/subscriber.log"; then
  ok "libmosquitto examples: the subscriber (max age 300 s) opened the 4 sealed messages and refused the forgery (mosquitto on 127.0.0.1:$port)"
else
  tail -20 "$out/mosquitto.log"
  fail "libmosquitto examples: the subscriber did not print the plaintexts"
fi
if [ -s "$out/eavesdropper.bin" ] && ! grep -aq "secret reading" "$out/eavesdropper.bin"; then
  ok "a plain MQTT subscriber saw $(wc -c <"$out/eavesdropper.bin") bytes of ciphertext, no plaintext"
else
  fail "the eavesdropper saw plaintext or nothing"
fi
kill "$broker_pid" 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=

# --- the same examples through the Mosquitto of the seeds' walkthrough ---------------------------
# Its exact openssl commands (-subj/-passout/-passin answer the prompts): X.509 v1 certificates,
# server CN = 127.0.0.1, no subjectAltName; TLS listener, require_certificate, password_file made
# with mosquitto_passwd, an ACL. libmosquitto checks the certificate as mosquitto_pub does.
seeds=$broker_dir/seeds
mkdir -p "$seeds"
(
  cd "$seeds"
  openssl req -new -x509 -days 1826 -extensions v3_ca -keyout ca.key -out ca.crt \
    -subj "/CN=seeds CA" -passout pass:seeds-ca-pass 2>/dev/null
  for who in server:127.0.0.1 client:seeds-client; do
    name=${who%%:*}
    openssl genrsa -out "$name.key" 2048 2>/dev/null
    openssl req -out "$name.csr" -key "$name.key" -new -subj "/CN=${who#*:}"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
      -days 360 -passin pass:seeds-ca-pass 2>/dev/null
  done
  mosquitto_passwd -b -c passwd userclient client-pw
  mosquitto_passwd -b passwd userbroker broker-pw
  printf 'user userclient\ntopic write demo/#\n\nuser userbroker\ntopic read demo/#\n' >acl
)
chmod 755 "$seeds"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$seeds/mosquitto.conf" <<CONF
listener $port 127.0.0.1
cafile $seeds/ca.crt
certfile $seeds/server.crt
keyfile $seeds/server.key
require_certificate true
allow_anonymous false
password_file $seeds/passwd
acl_file $seeds/acl
persistence false
log_dest stdout
log_type all
CONF
chmod 644 "$seeds"/*
"$mosquitto_bin" -c "$seeds/mosquitto.conf" >"$out/mosquitto-seeds.log" 2>&1 &
broker_pid=$!
for _ in $(seq 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$broker_pid" 2>/dev/null || break
  sleep 0.1
done
# The walkthrough's subscriber (the server's certificate as client certificate) and publisher.
timeout 60 "$bin/mqseal_sub" -h 127.0.0.1 -p "$port" -A "$seeds/ca.crt" -c "$seeds/server.crt" \
  -K "$seeds/server.key" -u userbroker -w broker-pw -k "$key" -T "$publisher" -t 'demo/#' -n 1 \
  >"$out/subscriber-seeds.log" 2>&1 &
sub_pid=$!
for _ in $(seq 300); do
  grep -q '^ready' "$out/subscriber-seeds.log" 2>/dev/null && break
  kill -0 "$sub_pid" 2>/dev/null || break
  sleep 0.1
done
"$bin/mqseal_pub" -h 127.0.0.1 -p "$port" -A "$seeds/ca.crt" -c "$seeds/client.crt" \
  -K "$seeds/client.key" -u userclient -w client-pw -s "$seed" -k "$key" -t demo/plant/7 \
  -m "Hello world" >"$out/publisher-seeds.log" 2>&1 || fail "publisher over the seeds' TLS"
if wait "$sub_pid"; then sub_status=0; else sub_status=$?; fi
sub_pid=
cat "$out/publisher-seeds.log" "$out/subscriber-seeds.log"
if [ "$sub_status" -eq 0 ] && grep -q '^demo/plant/7: Hello world (seq 0,' "$out/subscriber-seeds.log"; then
  ok "libmosquitto examples through the seeds' Mosquitto (v1 certificates, CN=127.0.0.1, mTLS, passwords, ACL)"
else
  tail -20 "$out/mosquitto-seeds.log"
  fail "libmosquitto examples did not deliver through the seeds' Mosquitto"
fi
# A host the certificate does not name: refused by libmosquitto, as by mosquitto_pub and mqseal.
if "$bin/mqseal_pub" -h localhost -p "$port" -A "$seeds/ca.crt" -c "$seeds/client.crt" \
  -K "$seeds/client.key" -u userclient -w client-pw -s "$seed" -k "$key" -t demo/plant/7 \
  -m x >"$out/publisher-seeds-localhost.log" 2>&1; then
  fail "the libmosquitto publisher accepted -h localhost for a certificate of CN=127.0.0.1"
else
  ok "the libmosquitto publisher refused -h localhost ($(tr '\n' ' ' <"$out/publisher-seeds-localhost.log"))"
fi
kill "$broker_pid" 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=

echo "c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
