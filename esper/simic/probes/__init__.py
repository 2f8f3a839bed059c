"""probes: the telemetry probes of docs/pipeline.md §7, one module per probe.

PPO-side probes (measured by the learned policy and its update; they emit into the policy's
`EventList`, which the env loop replays into the hub with the step stamped: esper.leyline.emitter
says why the policy does not hold the hub):
- `lstm_health` (TELE-340): health of the LSTM hidden state, in the update and the rollout.
- `head_grad_norms`: L2 norm of each head's gradient after backward.
- `gradient_drift`: drift of the policy gradient norm and health from their running averages.
- `anomalies`: ratio explosion / collapse, value collapse and numerical instability per update.

`ppo_probes` composes the ones a run switched on (decided once, at construction): the PPO
update calls it at two points (after evaluating the actions, after backward), the policy after
every act and after every update. A probe that is off is never called and measures nothing.

Env-side probes (measured around the host's training and validation, emitted by the env loop):
- `trends`: plateau / degradation / improvement of each host's accuracy over its episode; TAMIYO_INITIATED.
- `seed_telemetry`: a per-seed snapshot every epoch, recorded and fed to the observation.
- `throughput`: step time, data-loading wait and fps per env step.
- `cuda_timing`: the step clock: CUDA events on a GPU, else the CPU clock.
- `profiler`: torch.profiler traces over a window of env steps, kept as run artifacts.
- `diagnostics`: per-layer gradients, per-class accuracy, train/val gap and red flags.
- `memory`: process (and CUDA) memory per batch, MEMORY_WARNING above a bound.
- `reward_hacking`: a seed's contribution out of proportion to the model's improvement.

`env_probes` composes the ones a run switched on, likewise decided once; the env loop calls
its hooks at fixed points (see its docstring).
"""
