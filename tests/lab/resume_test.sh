#!/bin/sh
# Resumable lab runs (docs/lab.md "Checkpoints and resuming"): a run killed with SIGKILL at
# pseudo-random points and resumed writes the same results, byte for byte, as an uninterrupted
# run; refused checkpoints (corrupt, truncated, another configuration, a fresh run over old
# checkpoints) stop the run with an error naming the file and the reason.
#
# usage: resume_test.sh LAB WORKDIR SEED MODE [FLAGS...]
#   LAB     the selfreplay-lab program
#   WORKDIR scratch directory (emptied first)
#   SEED    seed of the kill points (which progress line each kill follows)
#   MODE    toy or text: the mode word and its result files
#   FLAGS   the run's flags (small sizes: the test runs the experiment about four times)
set -eu
LAB=$1 W=$2 SEED=$3 MODE=$4
shift 4
case $MODE in
    toy) FILES="toy.json toy_curves.csv toy.svg" ;;
    text) FILES="text.json text.svg" ;;
    *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
rm -rf "$W"
mkdir -p "$W"
CK="$W/ck"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# the result files without their wall-time fields ("seconds"), the only fields that differ
# between two runs of the same configuration
same_results() {  # same_results DIR_A DIR_B
    for f in $FILES; do
        case $f in
            *.json)
                sed -E 's/"seconds": [-0-9.e+]+//g' "$1/$f" >"$W/a.norm"
                sed -E 's/"seconds": [-0-9.e+]+//g' "$2/$f" >"$W/b.norm"
                cmp "$W/a.norm" "$W/b.norm" || fail "$2/$f differs from $1/$f"
                ;;
            *) cmp "$1/$f" "$2/$f" || fail "$2/$f differs from $1/$f" ;;
        esac
    done
}

# kill_after N ARGS...: runs the lab in the background and SIGKILLs it once N progress lines are out
kill_after() {
    n=$1
    shift
    : >"$W/log"
    "$LAB" $MODE "$@" >>"$W/log" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ "$(wc -l <"$W/log")" -lt "$n" ]; do sleep 0.01; done
    if kill -KILL $pid 2>/dev/null; then
        wait $pid 2>/dev/null || true
        echo "killed after $(wc -l <"$W/log") lines (asked for $n); checkpoints: $(ls "$CK" 2>/dev/null | tr '\n' ' ')"
    else
        wait $pid || fail "the run exited with an error before it was killed: $(cat "$W/log")"
        echo "the run finished before the kill after line $n"
    fi
}

# 1. the reference: uninterrupted, no checkpoints; its progress lines are the kill points' range
"$LAB" $MODE "$@" --out "$W/ref" >"$W/ref.log" 2>&1 || fail "the reference run failed: $(cat "$W/ref.log")"
lines=$(wc -l <"$W/ref.log")

# 2. killed twice at seeded progress lines, resumed twice, then run to the end
set -- "$@" --checkpoint "$CK" --checkpoint-every 3 --out "$W/run"
k1=$(awk -v s="$SEED" -v n="$lines" 'BEGIN { srand(s); print 3 + int(rand() * n * 0.4) }')
k2=$(awk -v s="$SEED" -v n="$lines" 'BEGIN { srand(s + 1); print 2 + int(rand() * n * 0.3) }')
kill_after "$k1" "$@"
kill_after "$k2" "$@" --resume
"$LAB" $MODE "$@" --resume --quiet >"$W/resume.log" 2>&1 || fail "the resumed run failed: $(cat "$W/resume.log")"
grep -q "resuming from" "$W/resume.log" || fail "the last run did not resume: $(cat "$W/resume.log")"
same_results "$W/ref" "$W/run"
echo "killed and resumed run equals the uninterrupted one"

# 3. a fresh run over existing checkpoints is refused
if "$LAB" $MODE "$@" --quiet >"$W/fresh.log" 2>&1; then fail "a fresh run over existing checkpoints was accepted"; fi
grep -q "already holds checkpoints" "$W/fresh.log" || fail "unexpected message: $(cat "$W/fresh.log")"

# 4. another configuration is refused, naming the flag
if "$LAB" $MODE "$@" --resume --seed 77 --quiet >"$W/config.log" 2>&1; then fail "a checkpoint of another configuration was accepted"; fi
grep -q "another configuration: '--seed .*' in the checkpoint, '--seed 77' in this run" "$W/config.log" ||
    fail "unexpected message: $(cat "$W/config.log")"

# 5. a corrupted newest checkpoint is refused with its reason; the previous one is used and the
#    results are still exact
newest=$(ls -t "$CK"/*.ckpt | head -n 1)  # the last file written
cp -r "$CK" "$W/ck.saved"
size=$(wc -c <"$newest")
printf '\377' | dd of="$newest" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
rm -rf "$W/run"
"$LAB" $MODE "$@" --resume --quiet >"$W/corrupt.log" 2>&1 || fail "resuming past a corrupt checkpoint failed: $(cat "$W/corrupt.log")"
grep -q "'$newest'.*checksum mismatch" "$W/corrupt.log" || fail "the corrupt file was not named: $(cat "$W/corrupt.log")"
same_results "$W/ref" "$W/run"

# 6. both checkpoints (slots 0 and 1) of the newest file's stem truncated: refused, naming each
#    file and why
rm -rf "$CK"
cp -r "$W/ck.saved" "$CK"
stem=${newest%.[01].ckpt}
for f in "$stem.0.ckpt" "$stem.1.ckpt"; do
    head -c 1000 "$f" >"$f.cut"
    mv "$f.cut" "$f"
done
if "$LAB" $MODE "$@" --resume --quiet >"$W/cut.log" 2>&1; then fail "truncated checkpoints were accepted"; fi
for f in "$stem.0.ckpt" "$stem.1.ckpt"; do
    grep -q "'$f'.*truncated" "$W/cut.log" || fail "$f not named as truncated: $(cat "$W/cut.log")"
done
echo "refused checkpoints: ok"
