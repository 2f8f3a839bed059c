"""simic: the env loop that runs episodes, the rewards, PPO and the telemetry probes."""
