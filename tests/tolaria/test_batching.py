import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from esper.tolaria.batching import BatchSchedule


def test_full_every_env_gets_the_same_order() -> None:
    schedule = BatchSchedule(100, 40, 32, seed=3, env_data="full", envs=3)
    batches = [schedule.train_batches(1, env) for env in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2]))
    assert [len(b) for b in batches[0]] == [32, 32, 32, 4]
    assert sorted(torch.cat(batches[0]).tolist()) == list(range(100))
    assert schedule.val_indices(2) is None


def test_a_last_batch_of_one_image_joins_the_batch_before_it() -> None:
    schedule = BatchSchedule(65, 10, 32, seed=0, env_data="full", envs=1)
    assert [len(b) for b in schedule.train_batches(0, 0)] == [32, 33]
    assert [len(b) for b in BatchSchedule(1, 10, 32, 0, "full", 1).train_batches(0, 0)] == [1]


def test_order_is_seeded_per_epoch() -> None:
    a = BatchSchedule(50, 10, 8, seed=1, env_data="full", envs=1)
    b = BatchSchedule(50, 10, 8, seed=1, env_data="full", envs=1)
    assert torch.equal(a.permutation(4), b.permutation(4))
    assert not torch.equal(a.permutation(4), a.permutation(5))
    assert not torch.equal(a.permutation(4), BatchSchedule(50, 10, 8, 2, "full", 1).permutation(4))


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 200), st.integers(4, 50), st.integers(1, 4), st.integers(1, 64))
def test_split_partitions_one_pass(n_train: int, n_val: int, envs: int, batch_size: int) -> None:
    schedule = BatchSchedule(n_train, n_val, batch_size, seed=0, env_data="split", envs=envs)
    shares = [torch.cat(schedule.train_batches(0, env)) for env in range(envs)]
    assert sorted(torch.cat(shares).tolist()) == list(range(n_train))
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1
    vals = [schedule.val_indices(env) for env in range(envs)]
    assert sorted(torch.cat(vals).tolist()) == list(range(n_val))  # type: ignore[arg-type]
