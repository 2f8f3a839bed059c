"""The learned policies (`mlp`, `lstm`): act in the env loop, collect the rollout, learn by PPO."""

from __future__ import annotations

import os
from dataclasses import asdict

import torch

from esper.kasmina.optim import Adam
from esper.leyline.actions import FactoredAction
from esper.leyline.config import ExperimentSpec
from esper.leyline.emitter import EmittedEvent, EventList
from esper.leyline.errors import EsperError, describe_error
from esper.simic.normalization import RunningMeanStd
from esper.simic.ppo import UpdateInputs, entropy_coefficient, ppo_update
from esper.simic.probes.ppo_probes import PPOProbes
from esper.simic.rollout_buffer import RolloutBuffer
from esper.tamiyo.actor_critic import FactoredActorCritic, LSTMState, NetworkConfig
from esper.tamiyo.factored_distribution import ActionMasks, evaluate, sample, to_action
from esper.tamiyo.features import encode_batch, observation_size
from esper.tamiyo.observation import EnvObservation
from esper.tamiyo.policy import UpdateReport


_CHECKPOINT_KEYS = ("network_config", "network", "optimizer", "obs_stats", "reward_stats")


class CheckpointError(EsperError):
    """A policy checkpoint cannot be loaded into this experiment's policy."""

    exit_code = 2


class PPOPolicy:
    """Samples factored actions from the actor-critic, records the rollout of each batch of
    episodes and runs one PPO update at its end. Observation statistics are frozen during the
    rollout and updated before the update. With `policy.train` false (a frozen evaluation) it
    acts the same way but learns nothing: no update, no optimiser step, no statistics update."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        n_slots = len(spec.slots.enabled)
        self.config = NetworkConfig(
            obs_dim=observation_size(n_slots, spec.telemetry.enabled("seed_telemetry")),
            n_slots=n_slots, n_blueprints=len(spec.blueprints),
            feature_dim=spec.policy.feature_dim, hidden_dim=spec.policy.hidden_dim,
            embedding_dim=spec.policy.blueprint_embedding_dim, recurrent=spec.policy.type == "lstm")
        self.network = FactoredActorCritic(self.config)
        self.optimizer = Adam(self.network.parameters(), lr=spec.ppo.lr, eps=spec.ppo.adam_eps)
        self.obs_stats = RunningMeanStd((self.config.obs_dim,))
        self.reward_stats = RunningMeanStd(())
        self.generator = torch.Generator().manual_seed(spec.seed)
        self.buffer: RolloutBuffer | None = None
        self.state: LSTMState | None = None
        self.probes = PPOProbes(spec.telemetry, self.network)
        self.probe_events = EventList()  # raised by act, not yet drained

    def start_episode(self, n_envs: int) -> None:
        self.buffer = RolloutBuffer(self.spec.training.episode_length, n_envs,
                                    self.config.obs_dim, self.config.n_slots)
        self.state = self.network.initial_state(n_envs)
        self.buffer.initial_state = self.state
        self.probes.start_episode(n_envs)

    def act(self, observations: list[EnvObservation]) -> list[FactoredAction]:
        assert self.buffer is not None, "start_episode() first"
        raw, blueprints = encode_batch(observations)  # (N, F), (N, S)
        obs = self.obs_stats.normalize(raw)
        masks = ActionMasks.of(observations, self.spec.slots.min_prune_age)
        with torch.no_grad():
            out = self.network(obs.unsqueeze(0), blueprints.unsqueeze(0), self.state)
            logits = [head[0] for head in out.logits]  # (N, n_h)
            actions = sample(logits, masks, self.generator)  # (N, heads)
            log_probs, _ = evaluate(logits, masks, actions)
        self.buffer.add(raw, obs, blueprints, masks, actions, log_probs, out.values[0])
        self.state = out.state
        self.probes.after_act(out.state, self.probe_events)
        return [to_action(row) for row in actions.tolist()]

    def drain_probe_events(self) -> tuple[EmittedEvent, ...]:
        """The LSTM-health warnings raised by the acts since the last call."""
        return self.probe_events.drain()

    def record_rewards(self, rewards: list[float]) -> None:
        assert self.buffer is not None
        self.buffer.add_rewards(torch.tensor(rewards, dtype=torch.float32))

    def end_episode(self, final: list[EnvObservation], batch: int) -> UpdateReport | None:
        """Bootstrap from V of the final states, update the observation statistics, learn;
        the update's metrics come with its probe fields and events. None when frozen
        (`policy.train` false): nothing is learned."""
        buffer = self.buffer
        assert buffer is not None and buffer.full, "the rollout is not complete"
        if not self.spec.policy.train:
            return None
        raw, blueprints = encode_batch(final)
        with torch.no_grad():
            last_values = self.network(self.obs_stats.normalize(raw).unsqueeze(0),
                                       blueprints.unsqueeze(0), self.state).values[0]
        self.obs_stats.update(buffer.raw_obs.flatten(0, 1))  # for the next rollout
        coef = entropy_coefficient(self.spec.ppo, batch, self.spec.training.batches)
        measured = self.probes.begin_update()
        metrics = ppo_update(self.network, self.optimizer, self.reward_stats, self.spec.ppo,
                             UpdateInputs(buffer, last_values, coef), measured)
        return self.probes.report(metrics, measured, batch)

    # --- checkpoints ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network, optimiser, normalisation statistics and probe state (the
        gradient-drift EMAs) to `path`."""
        torch.save({"network_config": asdict(self.config), "network": self.network.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "obs_stats": self.obs_stats.state_dict(),
                    "reward_stats": self.reward_stats.state_dict(),
                    "probes": self.probes.state_dict()}, path)

    def load(self, path: str | os.PathLike[str]) -> None:
        """Start from the checkpoint at `path` (`policy.init_from`).

        Raises:
            CheckpointError: missing, unreadable, or made for a different network shape.
        """
        try:
            # weights_only: tensors, containers and numbers only; a full unpickle of a file
            # named in an experiment could run any code the file carries.
            checkpoint = torch.load(path, weights_only=True)
        except Exception as error:  # a file torch cannot read fails in many ways (KeyError too)
            raise CheckpointError(
                f"cannot load policy checkpoint {path}: {describe_error(error)}") from None
        missing = [key for key in _CHECKPOINT_KEYS if key not in checkpoint] if isinstance(
            checkpoint, dict) else list(_CHECKPOINT_KEYS)
        if missing:
            raise CheckpointError(
                f"{path} is not an esper policy checkpoint (missing {', '.join(missing)}); "
                "policy.init_from takes a policy.pt artifact of an earlier lstm or mlp run")
        if checkpoint["network_config"] != asdict(self.config):
            raise CheckpointError(
                f"policy checkpoint {path} was made for {checkpoint['network_config']}, "
                f"this experiment's policy is {asdict(self.config)}")
        self.network.load_state_dict(checkpoint["network"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.obs_stats.load_state_dict(checkpoint["obs_stats"])
        self.reward_stats.load_state_dict(checkpoint["reward_stats"])
        # checkpoints written before the probes kept state have no "probes": start them fresh
        self.probes.load_state_dict(checkpoint.get("probes", {"gradient_drift": None}))
