"""Diffusion schedules, the DDIM coefficient table and the DDIM sampling loop."""
