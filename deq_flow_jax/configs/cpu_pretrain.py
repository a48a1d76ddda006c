"""The shipped model's recipe: DEQ-Flow-S trained on the CPU on rendered layered scenes.

    deq-flow train --config deq_flow_jax/configs/cpu_pretrain.py --workdir runs/cpu_pretrain

Variant S (this project's addition: RAFT-small's encoders, 0.34 GFLOP per 192x256 image against 6.6
for the encoders of every published variant, tiny included, and a narrow update block; 1.01M
parameters) on the rendered `layered` dataset (photographs and procedural textures as layers with
their own affine/perspective motions, data/layered.py), rendered at 384x512 and cropped to 192x256
after the official dense augmentation. Anderson with 12 steps (24 from step 11,800: at 12 the
training states were still far from the fixed point, relative residual 0.02, and past ~16 steps the
validation EPE rose; 24 steps cost 1.25x the time per step and reach 0.003-0.005; evaluation stays
at 24 steps) and 3 fixed-point correction terms (one phantom step each, gamma 0.8), batch 4, AdamW
1e-4 (4e-4 for the first 1,800 steps, 2e-4 to step 5,800) with a one-cycle schedule (over 20k steps
until step 7,150, then 14k, then 10k from 7,200: step 10,000's weights shipped in session 8), then
warm restarts (`restarts`) at 10,000 (over 30k: step 14,250's weights shipped in session 9, step
17,250's in session 10, step 21,250's in session 13, step 22,000's in session 14, step 25,500's in
sessions 15-16), at 30,000 (over 36k, with nearly textureless layers: step 30,500's weights shipped
in sessions 17-18, step 33,750's in sessions 19-21), at 36,000 (over 42k: step 42,000's weights
shipped in sessions 22-29), then, from 42,000, with half the flat layers cut from photographs, at
42,000 (over 43k), at 43,000 (over 45k: step 45,000's weights shipped in sessions 30-45) and at
45,000 (over 47k; session 31's run drew with 45,000; session 40 ran it again with scikit-learn's two
photographs in the train bank, `extra_photos`, which beat 45,000 on 6 of 7 benchmark sets and is the
committed state until session 45; session 46 ran it on a second training draw with the mixed
camera motion, which beat 45,000 on every set: the committed state and the shipped weights),
Gaussian image noise as the official
`--add_noise`. Validation on 16 held-out layered pairs (held-out photographs), and from step 1,800
on 8 held-out photo pairs with known motion (`extra_val`), the set the shipped model must win on.
docs/pretrained.md has the curve, the CPU-hours and the command to continue.
"""
import ml_collections

from deq_flow_jax.configs.common import base_config


def get_config(arg: str | None = None):
    c = base_config(arg or "S")
    c.seed = 20261130
    # The schedule: a one-cycle to step 10,000, then warm restarts, each annealing linearly to
    # zero at the next (train/optim.py; the lr at each restart is the value the run had there).
    # 20,000 steps until step 7,150, 14,000 to 7,200. Sessions 6-7 ran 7,100 -> 11,850 of a
    # 14,000-step cycle and their state was lost with their machines (photo-pair EPE 2.69 ->
    # 2.07 px on the way, docs/pretrained_history.md). From the committed 7,100 (session 8) the
    # cycle ends at 10,000 (lr 6.6e-5 -> 2.9e-5 at step 7,200, then linearly to zero), so the
    # anneal completes within one session and the model shipped in session 8 was an annealed one.
    # From 10,000 (end of session 8): a warm restart over 30,000 steps: the anneal to 10,000
    # gained no more per step than the constant lr before it, and the model is undertrained
    # (40k samples), not at a floor.
    # From 30,000 (session 17): a warm restart over 36,000 steps, with flat layers (below).
    # From 36,000 (session 20): a warm restart over 42,000 steps, the same data: the control
    # arm of the recipe changes that docs/pretrained.md ("Next") proposes.
    # Sessions 22-28 continued 42,000 with the restarts below to 57,000 (the state committed
    # until session 29); none of their ends beat 42,000 on every benchmark set. Session 30
    # replaced that branch with the photo-flat one (the last two restarts here, from 42,000).
    # The 42,000 -> 57,000 branch, for the record:
    # From 42,000 (session 22): a warm restart over 45,000 steps (the first 1,000 the control
    # arm of the widening pilot; run as `--config.lr=5.7e-4 --config.num_steps=45000`, whose
    # line passes through 3.9968e-5 at 42,000: the same schedule within 2e-9).
    # Until session 22 the config said these restarts with a nominal peak lr and num_steps.
    # From 45,000 (session 23): a warm restart over 48,000 steps (lr 4e-5, as at 42,000), the
    # control arm of a pilot against the same state widened by splitting channels (`deq-flow
    # widen --method split`, docs/pretrained_history.md).
    # From 48,000 (session 24): a warm restart over 49,500 steps (lr 2e-5). The restart over 48k
    # ended better on the rendered scenes and worse on the real-photo sets than it began; a
    # pilot on 288x384 crops was ahead of it at equal CPU time, a fine-tune of the 45,000 state
    # on them was not (docs/pretrained_history.md, "Crop-size pilot"), so the crops stay 192x256.
    # From 49,500 (session 25): a warm restart over 52,500 steps (lr 4e-5, as at 42,000 and
    # 45,000). The restart over 49.5k ended worse on the real-photo sets than 42,000 (plain and
    # refined, docs/pretrained_history.md); the restart ends are draws on a plateau.
    # From 52,500 (session 26): a warm restart over 55,500 steps (lr 3e-5), judged, as the
    # commands now run the model, by its fused refined flow (docs/pretrained_history.md).
    # From 55,500 (session 27): a warm restart over 57,000 steps (lr 2e-5, as at 48,000).
    # Session 28 ran it to its end and added no restart: since 42,000 the restarts gain on the
    # rendered scenes and lose on flat photographs; the next step was a change of recipe.
    # That branch's restarts: ((42_000, 3.9968e-5), (45_000, 4e-5), (48_000, 2e-5),
    # (49_500, 4e-5), (52_500, 3e-5), (55_500, 2e-5)), num_steps 57,000 (git de015df).
    # The path of the shipped model: from 42,000 (session 29) a warm restart over 43,000 steps
    # (lr 2e-5) with photographed flat layers (flat_photo_prob, below), the pilot arm that lost
    # to 42,000 only on the photo pairs, by 0.002 px; from 43,000 (session 30) one more over 45,000
    # (lr 2e-5), whose end beat 42,000 on every set (docs/pretrained_history.md) and is shipped.
    # From 45,000 (session 31): one more over 47,000 (lr 2e-5): its end drew with 45,000 (better
    # on the photo pairs, the real pair and the large motions, worse on the rendered scenes and
    # the translations), so 45,000 stays shipped and 47,000 is the committed state.
    c.num_steps = 47_000
    c.restarts = ((10_000, 6.8137e-5), (30_000, 1.7240e-5), (36_000, 1.4783e-5),
                  (42_000, 2e-5), (43_000, 2e-5), (45_000, 2e-5))
    c.batch_size = 4
    # 4e-4 (the paper's, at batch 10-12) for steps 0-1800; training EPE then sat at ~11 px
    # for 1,500 steps and validation rose, so 2e-4 from step 1800 (session 4) on: batch 4's
    # gradient noise is ~sqrt(3) larger than at batch 12 (docs/pretrained.md).
    # From step 5,800 (session 5): 1e-4. The training EPE had sat at ~6 px (means over 250
    # steps) and the photo-pair validation at 3.1 px for 1,000 steps at 1.5e-4: a noise floor.
    c.lr = 1e-4
    c.weight_decay = 1e-4
    # From step 3,650 (session 4): validation and the shipped weights use an EMA of the
    # weights; batch-4 updates made the validation EPE jump by 2 px between evaluations.
    c.ema_decay = 0.999
    c.pct_start = 0.02
    c.add_noise = True
    c.deq.f_solver = "anderson"
    c.deq.f_max_steps = 24
    c.deq.b_max_steps = 24
    c.deq.n_losses = 3
    c.deq.eval_factor = 1.0     # evaluation: 24 steps, as before step 11,800 (12 x 2.0)
    c.data.stage = "layered"
    c.data.crop_size = (192, 256)
    c.data.num_workers = 1
    c.data.val_dataset, c.data.val_split = "layered", "validation"
    c.data.val_max_examples = 16
    c.data.extra_val = "photo_pairs:validation:8"
    # From step 4,300 (session 5): 30 % of the training scenes are the background alone
    # (camera motion). On held-out photo pairs the model had painted blobs of 5-20 px
    # motion into flat, noisy sky where the truth was 0.6 px: every training scene had 4-15
    # objects moving up to 110 px, none a plain camera motion (docs/pretrained.md).
    # From step 7,100 (session 8; 7,400 in the lost sessions 6-7): half the scenes with
    # objects are parallax scenes (one camera moving through a static scene, layers moving
    # by inverse depth), as real stereo pairs and video are; on the real motorcycle pair the
    # model's flow was blobby where DIS follows the depth edges (docs/pretrained.md).
    # Session 14 tried slanted background planes (ground_prob=0.5: floors, walls, ceilings)
    # from 22,000 to 23,500, aimed at the motorcycle pair's floor: motorcycle 4.13 -> 4.10 px,
    # photo pairs 1.27 -> 1.39 (slow pixels 0.61 -> 0.84), so the run continues from 22,000
    # without them (docs/pretrained_history.md).
    # From 30,000 (session 17): 20 % of the layers nearly textureless (flat_prob 0.2). A pilot
    # of 500 steps against the same warm restart without them: layered / photo pairs /
    # motorcycle 4.23 / 1.17 / 4.04 px against 4.25 / 1.17 / 4.07 (docs/pretrained_history.md).
    # From 42,000 (session 29): half of those flat layers cut from smooth parts of the training
    # photographs instead of drawn (flat_photo_prob 0.5). A 1,000-step pilot against a control,
    # both fine-tuning 42,000, kept the flat translations and gained on large motions; continued
    # for 2,000 more steps (session 30) it beat 42,000 on every set (docs/pretrained_history.md,
    # "Flat layers from photographs").
    # Session 32 piloted flat_lowpass_prob 0.5 (half the photographed flats low-passed from any
    # training photograph) from 45,000 to 47,000 and 49,000 against session 31's restart: it lost on
    # the flat photo pairs, so it stays 0 (docs/pretrained_history.md, "Low-passed flats").
    # Session 33 piloted a loss weighted 5x near motion boundaries (--config.boundary_weight=4.0)
    # the same way: better on the real pair by 0.02-0.04 px, worse on the photo pairs and the
    # translations, so the loss stays the paper's (boundary_weight 0, from configs/common.py;
    # docs/pretrained_history.md, "Weighting motion boundaries").
    # Session 34 piloted a loss margin (--config.loss_margin=0.5: errors within 0.5 px cost nothing)
    # and wider camera motion (--config.data.layered.bg_motion_scale=1.5: backgrounds turn and zoom
    # up to 6 degrees and e^0.12) the same way; neither beat the shipped 45,000 on every set, so both
    # stay off (docs/pretrained_history.md, "A loss margin, and wider camera motion").
    # Session 35 piloted bg_motion_scale 1.25, and 1.5 in half the scenes (bg_motion_prob 0.5): both
    # won three sets and lost the rendered scenes (on one pair) and the translations (by <= 0.0025
    # px), so both stay off ("Milder and mixed camera motion, and weight averages"). Session 36 ran the
    # mixed law on to 49,000 and again on another training draw (data.layered.seed=1): the two runs
    # landed as far apart as the recipes did, so it stays off ("The mixed arm continued, and run again").
    # Session 37 ran this recipe as it is on seed 1 and the mixed law on seed 2: the training draw moves
    # both recipes alike on the same pairs, more than the recipe does ("The training draw decides").
    # Session 40 added scikit-learn's two photographs (extra_photos; the hazy sky and the
    # out-of-focus leaves give large smooth windows, which only the fundus and the clock had) and
    # ran the restart (45,000, 2e-5) over 47,000 with them on draw 0: better than the shipped
    # 45,000 on 6 of 7 sets and than session 31's run of the same restart without them on 6 of 7,
    # worse on the second benchmark draw's rendered scenes; the committed state in sessions 40-45
    # ("Photographs with large smooth regions"). extra_photos=() is the recipe without them
    # (sessions 29-39).
    # Sessions 44-46 ran the restart (45,000, 2e-5) over 47,000 with those photographs and the mixed
    # camera motion (bg_motion_scale 1.5 in half the scenes, bg_motion_prob 0.5) on two training
    # draws: draw 0 beat the shipped 45,000 on 7 of 9 benchmark sets, draw 1 (data.layered.seed=1)
    # on all 9; draw 1's 47,000 is the committed state and is shipped since session 46 ("Mixed
    # camera motion on the photographs", "Mixed camera motion, second training draw"). Its data
    # stream is draw 1's, so the seed is 1 here; the path before 45,000 was trained on draw 0 with
    # bg_motion_scale 1 and bg_motion_prob 1.
    c.data.layered = ml_collections.ConfigDict(dict(seed=1, camera_only_prob=0.3, parallax_prob=0.5,
                                                    flat_prob=0.2, flat_photo_prob=0.5,
                                                    flat_lowpass_prob=0.0, bg_motion_scale=1.5,
                                                    bg_motion_prob=0.5,
                                                    extra_photos=("china", "flower")))
    c.log_every = 10
    c.eval_every = 250
    c.checkpoint_every = 50
    c.num_val_images = 2
    return c
