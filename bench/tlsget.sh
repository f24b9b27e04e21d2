#!/bin/bash
# tlsget.sh: the CPU of an LNP/1 download over TLS, for two larder binaries
# side by side: the same 1 GiB file of the served folder fetched with
# `larder get -o /dev/null` (nothing written to disk, so the transfer and
# its hashing are all there is), each binary's client from its own server.
#
#   bench/tlsget.sh OLD_LARDER NEW_LARDER ROUNDS PORT
#
# The servers run on 127.0.0.1:PORT (old) and PORT+1 (new) for the whole
# run, over new data folders and one served folder holding a random file.
# Rounds alternate old and new; each line gives the round, the binary, the
# MB/s, the server's CPU seconds (/proc/PID/stat) and the client's user and
# system seconds (/usr/bin/time). The first round pays each server's
# SHA-256 of the file: leave it out of the medians.
set -eu
old=$1 new=$2 rounds=$3 port=$4
work=$(mktemp -d /tmp/larder-tlsget.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/files"
head -c 1073741824 /dev/urandom >"$work/files/big.bin"
export LARDER_PASSWORD=tlsget-bench-password
ticks=$(getconf CLK_TCK)
start() { # which binary port
	mkdir -p "$work/$1/home"
	HOME=$work/$1/home "$2" serve --listen off --native-listen "127.0.0.1:$3" \
		--data "$work/$1/data" --files "$work/files" --log-level warn >"$work/$1/log" 2>&1 &
	pids+=($!)
	echo $! >"$work/$1/pid"
	for _ in $(seq 50); do
		grep -q "native protocol" "$work/$1/log" && break
		sleep 0.1
	done
	HOME=$work/$1/home "$2" register --native --user alice --server "127.0.0.1:$3" </dev/null >/dev/null
}
cpu() { awk -v t="$ticks" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
start old "$old" "$port"
start new "$new" $((port + 1))
for round in $(seq "$rounds"); do
	for which in old new; do
		bin=$old p=$port
		[ $which = new ] && bin=$new p=$((port + 1))
		pid=$(cat "$work/$which/pid")
		c0=$(cpu "$pid") t0=$(date +%s.%N)
		HOME=$work/$which/home /usr/bin/time -f "%U %S" -o "$work/time" \
			"$bin" get /shared/big.bin --native --user alice --server "127.0.0.1:$p" -o /dev/null
		t1=$(date +%s.%N) c1=$(cpu "$pid")
		echo "round $round $which: $(echo "1073.741824 / ($t1 - $t0)" | bc -l | xargs printf "%.0f") MB/s, server $(echo "$c1 - $c0" | bc) s, client user+sys $(cat "$work/time")"
	done
done
