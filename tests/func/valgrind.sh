#!/bin/sh
# A short run of sluiced (1 ingest + 1 pipeline worker, the bundled corpus,
# graceful stop) under valgrind, following the forked workers: fails on any
# memory error or definite/indirect leak in any of the processes.
#   valgrind.sh BUILD SRC          the corpus through a file source
#   valgrind.sh BUILD SRC amqp     the corpus through the amqp source: a
#                                  private RabbitMQ node (tools/rabbitmq-node)
#                                  fed by oslo.messaging's Notifier, with a
#                                  broker restart in the middle (reconnect)
#   valgrind.sh BUILD SRC stateful the corpus 8 times through a file source
#                                  into the plain sink and a stateful one
#                                  (rate_of_change + unit_conversion over 16
#                                  partitions: prefetched state, lingering
#                                  frames, batched publishing, state saved
#                                  at the stop)
set -eu
BUILD=$1 SRC=$2 MODE=${3:-file}
D=$(mktemp -d /tmp/sluice-valgrind.XXXXXX)
RMQ=""
cleanup() {
    [ -n "$RMQ" ] && "$SRC/tools/rabbitmq-node" stop "$RMQ" >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap cleanup EXIT
WANT=$(wc -l < "$SRC/tests/data/expected.samples.jsonl")
COPIES=1
if [ "$MODE" = stateful ]; then
    COPIES=8
    WANT=$((WANT * COPIES))
    cat > "$D/pipeline.yaml" <<EOP
sources: [{name: s, meters: ['*'], sinks: [k, roc]}]
sinks:
  - {name: k, publishers: ['file://$D/samples.jsonl']}
  - name: roc
    transformers:
      - {name: rate_of_change, parameters: {target: {name: rate, unit: /s, type: gauge}}}
      - {name: unit_conversion, parameters: {target: {name: rate.per_min, scale: 'volume * 60'}}}
    publishers: ['file://$D/roc.jsonl']
EOP
    for i in $(seq $COPIES); do cat "$SRC/tests/data/corpus.jsonl"; done > "$D/input.jsonl"
else
    cat > "$D/pipeline.yaml" <<EOP
sources: [{name: s, meters: ['*'], sinks: [k]}]
sinks: [{name: k, publishers: ['file://$D/samples.jsonl']}]
EOP
fi
if [ "$MODE" = amqp ]; then
    RMQ=$D/rmq
    mkdir -p "$RMQ"
    "$SRC/tools/rabbitmq-node" start "$RMQ" > "$D/rmq.out" 2>&1 || {
        cat "$D/rmq.out"; echo "valgrind: the RabbitMQ node did not start"; exit 1; }
    . "$RMQ/node.env"
    SOURCE="{type: amqp, url: '$URL', exchanges: [nova], durable: true, reconnect_initial: 200ms, reconnect_max: 1s}"
elif [ "$MODE" = stateful ]; then
    SOURCE="{type: file, path: $D/input.jsonl}"
else
    SOURCE="{type: file, path: $SRC/tests/data/corpus.jsonl}"
fi
cat > "$D/sluice.yaml" <<EOC
run_dir: $D
workers: {ingest: 1, pipeline: 1}
sources: [$SOURCE]
ceilometer: {pipeline: pipeline.yaml, meters: $SRC/conf/meters.yaml}
EOC
valgrind --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=99 --log-file="$D/vg.%p" "$BUILD/supervisor/sluiced" -c "$D/sluice.yaml" 2> "$D/log" &
pid=$!
if [ "$MODE" = amqp ]; then
    notify() {
        /usr/bin/python3 "$SRC/tests/func/oslo_notify.py" --url "$URL" --durable \
            --input "$SRC/tests/data/corpus.jsonl" --exchanges nova --priorities info "$@" \
            >> "$D/notify.out" 2>&1 || { cat "$D/notify.out"; echo "valgrind: oslo_notify.py failed"; exit 1; }
    }
    # the queues exist once the source consumed (valgrind is slow to start)
    n=0
    while ! grep -q "consuming from" "$D/log" 2>/dev/null && [ $n -lt 600 ]; do
        kill -0 $pid 2>/dev/null || { cat "$D/log"; echo "valgrind: sluiced exited"; exit 1; }
        sleep 0.1; n=$((n+1))
    done
    notify --count 60
    "$SRC/tools/rabbitmq-node" restart "$RMQ" > "$D/rmq.out" 2>&1 || {
        cat "$D/rmq.out"; echo "valgrind: the RabbitMQ node did not restart"; exit 1; }
    notify --count 125
    # 60 + 125 notifications of the corpus, in order: at least the samples
    # of the whole corpus once (the first 60 may come twice after the restart)
fi
n=0
while [ "$(cat "$D/samples.jsonl" 2>/dev/null | wc -l)" -lt "$WANT" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
[ "$MODE" = amqp ] && sleep 2
kill -TERM $pid 2>/dev/null || true
rc=0; wait $pid || rc=$?
lines=$(wc -l < "$D/samples.jsonl")
bad=$(grep -l -E "ERROR SUMMARY: [1-9]" "$D"/vg.* || true)
if [ -n "$bad" ] || [ "$rc" -ne 0 ] || [ "$lines" -lt "$WANT" ] || { [ "$MODE" = file ] && [ "$lines" -ne "$WANT" ]; }; then
    echo "valgrind run failed: exit $rc, $lines samples (want $WANT), reports with errors: $bad"
    for f in $bad; do cat "$f"; done
    cat "$D/log"
    exit 1
fi
if [ "$MODE" = stateful ] && [ "$(cat "$D/roc.jsonl" 2>/dev/null | wc -l)" -eq 0 ]; then
    echo "valgrind: the stateful sink published nothing"; cat "$D/log"; exit 1
fi
if [ "$MODE" = amqp ] && ! grep -q "connection lost" "$D/log"; then
    echo "valgrind: the amqp source never saw the broker restart"; cat "$D/log"; exit 1
fi
echo "valgrind ($MODE): $(ls "$D"/vg.* | wc -l) processes, no errors, no leaks, $lines samples (want >= $WANT)"
