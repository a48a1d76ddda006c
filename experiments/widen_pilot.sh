#!/usr/bin/env bash
# Widening pilot (docs/pretrained_history.md, "Widening pilot"): the S model of the committed
# training state (training/cpu_pretrain) resumed as is (arm `ctrl`) and widened to a HID-channel GRU
# with `deq-flow widen` (arm `wide`), trained concurrently with the same config and batches for
# TRAIN_S wall seconds, then both benchmarked (`benchmarks/pretrained.py`) at the largest validation
# step both reached. Writes under OUT: run log lines, both train.jsonl, both benchmark JSONs, both
# models (EMA weights, model folders as .tgz). OUT must be new or empty; scratch in a new
# /tmp/widen-pilot.*.
#
#   OUT=/tmp/pilot_out TRAIN_S=330 NW=6 bash experiments/widen_pilot.sh      # what session 21 ran
#   EXTRA="--config.num_steps=60000" ...                                     # a raised lr
#
# Needs python3 on PATH with the project importable (PYTHONPATH is extended with the repo root).
# Env: TRAIN_S (training wall seconds, includes compilation), EVAL (validate and checkpoint every),
# HID (new hidden_dim, 128), METHOD (`deq-flow widen --method`: fresh or split; fresh), NW (data
# workers per arm), MEMFRAC (GPU memory per process), EXTRA (more --config overrides for both
# arms), BQ (benchmark flags, e.g. --quick).
set -u
T0=$(date +%s)
TRAIN_S=${TRAIN_S:-300}; EVAL=${EVAL:-250}; HID=${HID:-128}
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=${MEMFRAC:-0.4}
: "${OUT:?set OUT to a new or empty folder}"
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then echo "OUT=$OUT: not empty; nothing written" >&2; exit 2; fi
mkdir -p "$OUT"
W=$(mktemp -d /tmp/widen-pilot.XXXXXX); mkdir -p $W/snap/ctrl $W/snap/wide $W/b $W/m
python3 -c "import jax, flax, optax, orbax.checkpoint as o, grain; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, jax.devices())"
cp -r training/cpu_pretrain $W/ctrl
python3 -m deq_flow_jax.cli widen $W/ctrl $W/wide --hidden-dim $HID --method ${METHOD:-fresh} --seed 1 || exit 1
C=deq_flow_jax/configs/cpu_pretrain.py
COMMON="--config.data.num_workers=${NW:-6} --config.eval_every=$EVAL --config.checkpoint_every=$EVAL"
EXTRA=${EXTRA:-}
python3 -m deq_flow_jax.cli train --config $C --workdir $W/ctrl $COMMON $EXTRA > $W/ctrl.log 2>&1 &
P1=$!
python3 -m deq_flow_jax.cli train --config $C --workdir $W/wide $COMMON $EXTRA --config.model.hidden_dim=$HID > $W/wide.log 2>&1 &
P2=$!
snap() {  # copy each finished validation-step checkpoint once
  for arm in ctrl wide; do
    for d in $W/$arm/checkpoints/*; do
      s=$(basename $d); [[ $s =~ ^[0-9]+$ ]] || continue
      [ -f $d/commit_success.txt ] && [ ! -d $W/snap/$arm/$s ] && cp -r $d $W/snap/$arm/$s.tmp && mv $W/snap/$arm/$s.tmp $W/snap/$arm/$s
    done
  done
}
while [ $(( $(date +%s) - T0 )) -lt $TRAIN_S ] && kill -0 $P1 2>/dev/null; do snap; sleep 1; done
snap; kill -TERM $P1 $P2 2>/dev/null
for i in $(seq 60); do kill -0 $P1 2>/dev/null || kill -0 $P2 2>/dev/null || break; sleep 1; done
kill -KILL $P1 $P2 2>/dev/null; snap
cp $W/ctrl/train.jsonl $OUT/ctrl_train.jsonl; cp $W/wide/train.jsonl $OUT/wide_train.jsonl
S=$(comm -12 <(ls $W/snap/ctrl | grep -v tmp | sort) <(ls $W/snap/wide | grep -v tmp | sort) | sort -n | tail -1)
echo "trained for $(( $(date +%s) - T0 )) s; common step $S; ctrl $(ls $W/snap/ctrl | tr '\n' ' '); wide $(ls $W/snap/wide | tr '\n' ' ')"
[ -n "$S" ] || exit 1
tail -n 4 $W/ctrl.log $W/wide.log
BQ=${BQ:-}
for arm in ctrl wide; do
  mkdir -p $W/b/$arm/checkpoints && cp $W/$arm/config.json $W/$arm/model_config.json $W/b/$arm/ && cp -r $W/snap/$arm/$S $W/b/$arm/checkpoints/
  python3 -c "from deq_flow_jax import checkpoints as c; v, m, d = c.load('$W/b/$arm', 'latest'); c.save('$W/m/$arm', v, m, d)" && tar czf $OUT/${arm}_model.tgz -C $W/m $arm
  python3 benchmarks/pretrained.py --checkpoint $W/b/$arm --which latest --out $OUT/bench_$arm.json $BQ > $W/bench_$arm.txt 2>&1 &
done
wait
tail -n 45 $W/bench_ctrl.txt $W/bench_wide.txt
echo "scratch (delete when done): $W"
echo "total $(( $(date +%s) - T0 )) s"
