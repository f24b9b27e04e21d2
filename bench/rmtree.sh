#!/bin/sh
# rmtree.sh: how long `larder rm -r` takes over a tree of small files, for
# two larder binaries side by side (before: one DELETE per file and folder;
# after: one recursive DELETE), round by round, on the disk or on S3.
#
#   bench/rmtree.sh OLD_LARDER NEW_LARDER disk|s3 FILES ROUNDS PORT
#
# Each round starts, for each binary in turn, a server of its own on
# 127.0.0.1:PORT and PORT+1 over a new data folder (and, for s3, a new
# prefix of the bucket of $LARDER_TEST_S3, with its AWS_* credentials),
# registers and logs in a user in a new HOME, uploads a tree of FILES files
# (two per folder level: FILES/100 folders of 50 files, each with a
# subfolder of 50), times `rm -r` of it, checks that the user's usage is 0,
# and stops the server. It prints one line per run: round, binary, seconds.
set -eu
old=$1 new=$2 storage=$3 files=$4 rounds=$5 port=$6
work=$(mktemp -d /tmp/larder-rmtree.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=0
tree=$work/tree
dirs=$((files / 100))
i=0
while [ $i -lt $dirs ]; do
	mkdir -p "$tree/d$i/sub"
	j=0
	while [ $j -lt 50 ]; do
		echo "file $i $j" >"$tree/d$i/f$j.txt"
		echo "file $i sub $j" >"$tree/d$i/sub/g$j.txt"
		j=$((j + 1))
	done
	i=$((i + 1))
done
export LARDER_PASSWORD=rmtree-bench-password
round=1
while [ $round -le "$rounds" ]; do
	for which in old new; do
		bin=$old
		[ $which = new ] && bin=$new
		run=$work/$round-$which
		mkdir -p "$run/home"
		set -- --data "$run/data" --listen 127.0.0.1:$port --native-listen 127.0.0.1:$((port + 1)) --insecure-plaintext-native --log-level warn
		if [ "$storage" = s3 ]; then
			bucket=${LARDER_TEST_S3%%\?*}
			set -- "$@" --storage "$bucket/rmtree-$$-$round-$which?${LARDER_TEST_S3#*\?}"
		fi
		"$bin" serve "$@" >"$run/server.log" 2>&1 &
		pid=$!
		sleep 2
		export HOME=$run/home
		"$bin" register --native --insecure-plaintext --server 127.0.0.1:$((port + 1)) --user bench >/dev/null 2>&1
		"$bin" login --insecure-plaintext --server 127.0.0.1:$((port + 1)) --user bench >/dev/null 2>&1
		"$bin" put -r --transfers 8 "$tree" /t >/dev/null 2>&1
		start=$(date +%s.%N)
		"$bin" rm -r /t >/dev/null 2>&1
		end=$(date +%s.%N)
		used=$("$bin" whoami | awk '/^files:/ {print $2}')
		echo "round $round $which $(echo "$end - $start" | bc) s, files used after: $used, load $(cut -d' ' -f1 /proc/loadavg)"
		kill $pid
		wait $pid 2>/dev/null || true
	done
	round=$((round + 1))
done
