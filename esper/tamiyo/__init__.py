"""tamiyo: the policies (heuristic, random, mlp, lstm), their observations, masks, host signals."""
