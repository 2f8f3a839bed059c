"""The env loop, rewards, and (later) PPO: where episodes are run and learnt from."""
