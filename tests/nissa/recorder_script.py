"""Run by tests in a child process: record a run through the hub, then end as MODE says.

    python recorder_script.py REGISTRY MODE EVENTS STATE_DIR [START_AT]

MODE finish: emit EVENTS events and return.  raise: emit them, then raise RuntimeError.
wait: emit them, flush, create STATE_DIR/ready, then keep emitting until a signal ends it.
The run id is written to STATE_DIR/run_id. START_AT (unix time) lines several children up.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from esper.leyline.events import EpisodeOutcomePayload, TelemetryEventType
from esper.nissa.recording import recording
from esper.registry import NewRun, Registry


def outcome(i: int) -> EpisodeOutcomePayload:
    return EpisodeOutcomePayload(
        final_accuracy=50 + i % 50, param_ratio=1.0 + i / 1e6, seeds_germinated=i % 3,
        seeds_fossilized=i % 2, seeds_pruned=0, episode_reward=-0.5 + i % 7)


def main() -> None:
    registry_path, mode = sys.argv[1], sys.argv[2]
    count, state = int(sys.argv[3]), Path(sys.argv[4])
    if len(sys.argv) > 5:
        time.sleep(max(0.0, float(sys.argv[5]) - time.time()))
    registry = Registry.open(registry_path)
    new = NewRun(experiment=f"proc-{mode}", config={"mode": mode, "events": count}, seed=1)
    with recording(registry, new, heartbeat_interval=0.2) as rec:
        (state / "run_id").write_text(rec.run_id)
        for i in range(count):
            rec.hub.emit(TelemetryEventType.EPISODE_OUTCOME, outcome(i), batch=i // 100,
                         env_id=i % 4)
        if mode == "raise":
            raise RuntimeError("boom from the child")
        if mode == "wait":
            rec.hub.flush()
            (state / "ready").write_text("")
            i = count
            while True:  # signals land while events are being emitted
                rec.hub.emit(TelemetryEventType.EPISODE_OUTCOME, outcome(i), env_id=i % 4)
                i += 1
                time.sleep(0.001)


if __name__ == "__main__":
    main()
