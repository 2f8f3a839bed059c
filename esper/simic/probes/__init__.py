"""Telemetry probes of PIPELINE.md section 7, one module per probe.

PPO-side probes (measured by the learned policy and its update; the env loop emits their
events, since the policy does not hold the hub):
- `lstm_health` (TELE-340): health of the LSTM hidden state, in the update and the rollout.
- `head_grad_norms`: L2 norm of each head's gradient after backward.
- `gradient_drift`: drift of the policy gradient norm and health from their running averages.
- `anomalies`: ratio explosion / collapse, value collapse and numerical instability per update.

`ppo_probes` composes the ones a run switched on (decided once, at construction): the PPO
update calls it at two points (after evaluating the actions, after backward), the policy after
every act and after every update. A probe that is off is never called and measures nothing.
"""
