"""The one Flower adapter: RobustStrategy (+ adversary stage, FLTrust server step)."""
