"""The grain training pipeline: layout, exact resume, per-process split, workers, mixtures."""
import json

import numpy as np
import pytest

from deq_flow_jax.data import make_eval_loader, make_train_loader, stage_components
from deq_flow_jax.data.mixtures import parse_mixture

SYN = dict(height=40, width=56, num_train=5, num_val=3)


def _loader(data_dir, **kw):
    args = dict(data_dir=data_dir, crop_size=(32, 48), global_batch_size=4, seed=3, synthetic=SYN)
    args.update(kw)
    return make_train_loader("synthetic", **args)


def _same(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("syn")


def test_batch_layout(data_dir):
    batch = next(iter(_loader(data_dir)))
    assert set(batch) == {"image1", "image2", "flow", "valid"}
    assert batch["image1"].shape == batch["image2"].shape == (4, 32, 48, 3)
    assert batch["flow"].shape == (4, 32, 48, 2) and batch["valid"].shape == (4, 32, 48)
    for v in batch.values():
        assert v.dtype == np.float32
    assert batch["image1"].min() >= 0 and batch["image1"].max() <= 255
    assert set(np.unique(batch["valid"])) <= {0.0, 1.0}


def test_restored_iterator_yields_the_same_batches(data_dir):
    loader = _loader(data_dir)
    it = iter(loader)
    for _ in range(2):  # past the first epoch of 5 examples = 1.25 batches
        next(it)
    state = json.loads(json.dumps(it.get_state()))  # plain JSON: store it with the checkpoint
    expected = [next(it) for _ in range(3)]
    resumed = iter(_loader(data_dir))
    resumed.set_state(state)
    assert all(_same(a, b) for a, b in zip(expected, [next(resumed) for _ in range(3)]))
    # And the stream differs from a fresh start (the state really moved on).
    assert not _same(expected[0], next(iter(loader)))


def test_processes_share_the_global_batch(data_dir):
    full = iter(_loader(data_dir, global_batch_size=4))
    p0 = iter(_loader(data_dir, global_batch_size=4, process_index=0, process_count=2))
    p1 = iter(_loader(data_dir, global_batch_size=4, process_index=1, process_count=2))
    for _ in range(2):
        a, b0, b1 = next(full), next(p0), next(p1)
        assert b0["image1"].shape[0] == 2
        for k in a:
            np.testing.assert_array_equal(a[k][0::2], b0[k])
            np.testing.assert_array_equal(a[k][1::2], b1[k])
    with pytest.raises(ValueError, match="not divisible"):
        _loader(data_dir, global_batch_size=3, process_count=2)


def test_worker_processes_give_the_same_batches_and_resume(data_dir):
    reference = iter(_loader(data_dir))
    expected = [next(reference) for _ in range(4)]
    it = iter(_loader(data_dir, num_workers=2))
    got = [next(it) for _ in range(2)]
    state = it.get_state()
    got += [next(it) for _ in range(2)]
    assert all(_same(a, b) for a, b in zip(expected, got))
    # Copied out of the workers' shared memory: a batch still alive when the trainer exits
    # would otherwise leave its segments to the resource tracker ("leaked shared_memory").
    assert all(type(v) is np.ndarray and v.flags.owndata for b in got for v in b.values())
    resumed = iter(_loader(data_dir, num_workers=2))
    resumed.set_state(state)
    assert all(_same(a, b) for a, b in zip(expected[2:], [next(resumed) for _ in range(2)]))


def test_no_augmentation_gives_centre_crops(data_dir):
    batch = next(iter(_loader(data_dir, aug=False, global_batch_size=2)))
    from deq_flow_jax.data import make_eval_source
    src = make_eval_source("synthetic", "train", data_dir=data_dir, **SYN)
    crops = {src[i]["image1"][4:36, 4:52].tobytes() for i in range(len(src))}
    for img in batch["image1"]:
        assert img.astype(np.uint8).tobytes() in crops


def test_mixtures():
    comps = stage_components("sintel", (368, 768))
    assert [(c.dataset, c.weight) for c in comps] == [
        ("sintel_clean", 100), ("sintel_final", 100), ("kitti", 200), ("hd1k", 5), ("things_clean", 1)]
    assert comps[2].aug.sparse and (comps[2].aug.min_scale, comps[2].aug.max_scale) == (-0.3, 0.5)
    assert (comps[0].aug.min_scale, comps[0].aug.max_scale) == (-0.2, 0.6)
    kitti = stage_components("kitti", (288, 960))[0]
    assert kitti.aug.sparse and not kitti.aug.do_flip
    assert parse_mixture("100*sintel_clean + things") == [(100, "sintel_clean"), (1, "things")]
    with pytest.raises(ValueError, match="bad mixture term"):
        parse_mixture("3x*chairs")
    with pytest.raises(ValueError, match="unknown dataset"):
        stage_components("2*imagenet", (64, 64))


def test_mixture_loader_weights(data_dir):
    loader = make_train_loader("2*synthetic+synthetic_video", data_dir=data_dir, crop_size=(24, 32),
                               global_batch_size=2, seed=0, synthetic=dict(height=32, width=48, num_train=2,
                                                                           num_val=1))
    batch = next(iter(loader))
    assert batch["image1"].shape == (2, 24, 32, 3)


def test_eval_loader_keeps_order(data_dir):
    batches = list(make_eval_loader("synthetic", "validation", data_dir=data_dir, batch_size=2, **SYN))
    assert [b["image1"].shape[0] for b in batches] == [2, 1]
    assert [m["index"] for b in batches for m in b["meta"]] == [0, 1, 2]


def test_split_for_devices():
    from deq_flow_jax.data import split_for_devices
    batch = {"flow": np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2), "meta": [1, 2, 3, 4]}
    out = split_for_devices(batch, 2)
    assert out["flow"].shape == (2, 2, 3, 2) and out["meta"] == [1, 2, 3, 4]
    np.testing.assert_array_equal(out["flow"][1, 0], batch["flow"][2])
    with pytest.raises(ValueError, match="not divisible by 3 devices"):
        split_for_devices(batch, 3)


def test_mixture_source_index_mapping():
    from deq_flow_jax.data.mixtures import Component
    from deq_flow_jax.data.pipeline import MixtureSource

    class Fake:
        def __init__(self, name, n):
            self.name, self.n = name, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return (self.name, i)

    comps = [Component("a", 2, None), Component("b", 1, None)]
    mix = MixtureSource(comps, [Fake("a", 3), Fake("b", 2)])
    assert len(mix) == 8
    assert [mix[i] for i in range(8)] == [
        (0, ("a", 0)), (0, ("a", 1)), (0, ("a", 2)), (0, ("a", 0)), (0, ("a", 1)), (0, ("a", 2)),
        (1, ("b", 0)), (1, ("b", 1))]


def test_aug_overrides():
    from deq_flow_jax.data import AugConfig
    from deq_flow_jax.data.mixtures import apply_aug_override
    comps = stage_components("sintel", (64, 96))
    off = apply_aug_override(comps, {"eraser_prob": 0.0})
    assert all(c.aug.eraser_prob == 0.0 for c in off)
    assert off[2].aug.sparse and off[2].aug.min_scale == -0.3  # other fields kept
    assert all(c.aug is None for c in apply_aug_override(comps, False))
    same = apply_aug_override(comps, AugConfig(crop_size=(8, 8), min_scale=0.0, max_scale=0.0))
    assert all(c.aug.crop_size == (64, 96) and c.aug.max_scale == 0.0 for c in same)
    with pytest.raises(ValueError, match="unknown augmentation parameters"):
        apply_aug_override(comps, {"eraser": 0})


def _range_iter(workers):
    import grain
    it = grain.MapDataset.range(200).to_iter_dataset()
    if workers:
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                         per_worker_buffer_size=1))
    return iter(it)


def test_loader_position_moves_between_worker_counts():
    """A run resumed with another data.num_workers continues the same batch sequence."""
    from deq_flow_jax.data.pipeline import iterator_state_for
    states = {}
    for n in (0, 1, 3):
        it = _range_iter(n)
        for _ in range(7):
            next(it)
        states[n] = it.get_state()
        assert iterator_state_for(states[n], n) is states[n]
    for n, saved in states.items():                 # the layouts grain itself writes
        for m, want in states.items():
            assert iterator_state_for(saved, m) == want, (n, m)
    for n, m in ((1, 0), (1, 3), (3, 2), (0, 1)):    # and the batches that follow
        it = _range_iter(m)
        it.set_state(iterator_state_for(states[n], m))
        assert [int(next(it)) for _ in range(5)] == [7, 8, 9, 10, 11], (n, m)
    broken = dict(states[3], exhausted=[0, 1, 0])
    with pytest.raises(ValueError, match="num_workers=2: the saved workers"):
        iterator_state_for(broken, 2)
    with pytest.raises(ValueError, match="unknown state keys"):
        iterator_state_for({"position": 7}, 2)


def test_opencv_is_single_threaded_in_the_pipeline_only(data_dir):
    """Importing deq_flow_jax.data leaves OpenCV's thread count as it was (the refinement and
    the OpenCV baselines run multi-threaded beside it); building a training loader sets it to
    one (its worker processes do so at their start, `_train_worker_init`)."""
    import subprocess
    import sys

    import cv2
    code = ("import cv2; n = cv2.getNumThreads(); import deq_flow_jax.data, deq_flow_jax.data.photos; "
            "print(n, cv2.getNumThreads())")
    before, after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   check=True).stdout.split()
    assert before == after
    cv2.setNumThreads(2)
    next(iter(_loader(data_dir)))          # in-process
    assert cv2.getNumThreads() == 1
