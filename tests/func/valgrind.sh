#!/bin/sh
# A short run of sluiced (1 ingest + 1 pipeline worker, the bundled corpus,
# graceful stop) under valgrind, following the forked workers: fails on any
# memory error or definite/indirect leak in any of the processes.
set -eu
BUILD=$1 SRC=$2
D=$(mktemp -d /tmp/sluice-valgrind.XXXXXX)
trap 'rm -rf "$D"' EXIT
WANT=$(wc -l < "$SRC/tests/data/expected.samples.jsonl")
cat > "$D/pipeline.yaml" <<EOP
sources: [{name: s, meters: ['*'], sinks: [k]}]
sinks: [{name: k, publishers: ['file://$D/samples.jsonl']}]
EOP
cat > "$D/sluice.yaml" <<EOC
run_dir: $D
workers: {ingest: 1, pipeline: 1}
sources: [{type: file, path: $SRC/tests/data/corpus.jsonl}]
ceilometer: {pipeline: pipeline.yaml, meters: $SRC/conf/meters.yaml}
EOC
valgrind --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 --log-file="$D/vg.%p" "$BUILD/supervisor/sluiced" -c "$D/sluice.yaml" 2> "$D/log" &
pid=$!
n=0
while [ "$(cat "$D/samples.jsonl" 2>/dev/null | wc -l)" -lt "$WANT" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done
kill -TERM $pid
rc=0; wait $pid || rc=$?
lines=$(wc -l < "$D/samples.jsonl")
bad=$(grep -l -E "ERROR SUMMARY: [1-9]" "$D"/vg.* || true)
if [ -n "$bad" ] || [ "$rc" -ne 0 ] || [ "$lines" -ne "$WANT" ]; then
    echo "valgrind run failed: exit $rc, $lines samples (want $WANT), reports with errors: $bad"
    for f in $bad; do cat "$f"; done
    cat "$D/log"
    exit 1
fi
echo "valgrind: $(ls "$D"/vg.* | wc -l) processes, no errors, no leaks, $WANT samples"
