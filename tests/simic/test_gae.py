import torch

from esper.simic.gae import compute_gae


def test_gae_matches_a_hand_computed_truncated_episode():
    # one env, three steps, bootstrap V(s_3) = 0.5; gamma 0.9, lambda 0.8
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.2], [0.4], [0.3]])
    advantages, returns = compute_gae(rewards, values, torch.tensor([0.5]), 0.9, 0.8)
    d2 = 2.0 + 0.9 * 0.5 - 0.3  # 2.15
    d1 = 0.0 + 0.9 * 0.3 - 0.4  # -0.13
    d0 = 1.0 + 0.9 * 0.4 - 0.2  # 1.16
    a2 = d2
    a1 = d1 + 0.72 * a2
    a0 = d0 + 0.72 * a1
    assert torch.allclose(advantages.squeeze(1), torch.tensor([a0, a1, a2]))
    assert torch.allclose(returns, advantages + values)


def test_lambda_one_gives_discounted_returns_with_bootstrap():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # (T=2, N=2)
    values = torch.zeros(2, 2)
    _, returns = compute_gae(rewards, values, torch.tensor([10.0, 0.0]), 0.5, 1.0)
    assert torch.allclose(returns[0], torch.tensor([1 + 0.5 * 1 + 0.25 * 10, 0 + 0.5 * 1]))
