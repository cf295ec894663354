"""rsl-rl integration: runner configs, the DAgger distillation algorithm, and the train/play scripts."""
