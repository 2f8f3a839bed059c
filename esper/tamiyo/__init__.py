"""Decision policies (heuristic, random, mlp, lstm), their observations and action masks."""
