"""Attacks: data poisoning (client side), update poisoning (server-side adversary stage)."""
