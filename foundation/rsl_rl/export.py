"""Export a trained rsl-rl policy for deployment: TorchScript, ONNX and a JSON description of the interface.

The models are rsl-rl's own export wrappers (``model.as_jit()`` / ``model.as_onnx()``, as used by rsl-rl's
``OnPolicyRunner.export_policy_to_jit/onnx``): observation normalisation and the deterministic action (the mean of
the Gaussian) are included; the input is the policy's observation groups concatenated in ``obs_groups`` order.

Recurrent policies (``RNNModel``, GRU or LSTM) carry their state differently in the two files:

* ``policy.pt`` (TorchScript): ``forward(obs (1, D)) -> actions (1, A)`` keeps the state in the buffer
  ``hidden_state`` (and ``cell_state`` for an LSTM), shape (layers, 1, hidden), batch size 1; call ``reset()`` at
  every episode start.
* ``policy.onnx``: inputs ``obs`` (B, D), ``h_in`` (layers, B, hidden) [, ``c_in``]; outputs ``actions`` (B, A),
  ``h_out`` [, ``c_out``]. Feed zeros as the state at an episode start and ``h_out`` of a step as ``h_in`` of the
  next. The batch dimension B is dynamic (1 for one robot).

``policy_io.json`` describes all this for a deployer (see :func:`export_policy`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings

import torch

IO_FILE = "policy_io.json"
ONNX_OPSET = 18


def export_policy(policy: torch.nn.Module, out_dir: str, obs_group_sizes: dict[str, int] | None = None,
                  metadata: dict | None = None) -> dict[str, str]:
    """Write ``policy.pt`` (TorchScript), ``policy.onnx`` and ``policy_io.json`` into ``out_dir``.

    Args:
        policy: An rsl-rl ``MLPModel`` or ``RNNModel`` (``runner.alg.get_policy()``: the PPO actor or the
            distillation student), on any device; it is not modified (the export works on copies, on the CPU).
        out_dir: Output folder (created).
        obs_group_sizes: Size of each observation group of the env (``env.unwrapped.observation_sizes()``); the
            policy's groups are looked up here to describe the input layout. Optional: without it only the total
            input size is recorded.
        metadata: Extra JSON-serialisable entries for ``policy_io.json`` (e.g. task, checkpoint, control period).

    Returns:
        ``{"torchscript": path, "onnx": path, "io": path}`` (absolute paths), plus ``"onnx_data"`` if the ONNX
        exporter wrote its weights to an external file next to ``policy.onnx`` (keep the two together).

    Raises:
        TypeError: if ``policy`` has no ``as_jit``/``as_onnx`` (not an rsl-rl model).
        ValueError: if ``obs_group_sizes`` lacks one of the policy's groups or its sizes do not add up to the
            policy's input size.
    """
    for method in ("as_jit", "as_onnx"):
        if not callable(getattr(policy, method, None)):
            raise TypeError(f"Cannot export a {type(policy).__name__}: it has no {method}() (expected an rsl-rl "
                            "MLPModel or RNNModel).")
    groups = list(policy.obs_groups)
    if obs_group_sizes is not None:
        missing = [g for g in groups if g not in obs_group_sizes]
        if missing:
            raise ValueError(f"obs_group_sizes {obs_group_sizes} lacks the policy's group(s) {missing}.")
        if sum(obs_group_sizes[g] for g in groups) != policy.obs_dim:
            raise ValueError(f"The policy takes {policy.obs_dim} inputs but its groups {groups} have sizes "
                             f"{[obs_group_sizes[g] for g in groups]} in obs_group_sizes.")
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    cpu_policy = copy.deepcopy(policy).cpu().eval()

    paths = {"torchscript": os.path.join(out_dir, "policy.pt"), "onnx": os.path.join(out_dir, "policy.onnx")}
    jit_model = cpu_policy.as_jit().cpu().eval()
    with torch.no_grad():
        action_size = int(jit_model(torch.zeros(1, cpu_policy.obs_dim)).shape[-1])
    jit_model.reset()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it is still the format deployers load
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(jit_model).save(paths["torchscript"])

    onnx_model = cpu_policy.as_onnx(verbose=False).cpu().eval()
    dynamic_batch = _export_onnx(onnx_model, paths["onnx"])
    if os.path.exists(paths["onnx"] + ".data"):
        paths["onnx_data"] = paths["onnx"] + ".data"

    paths["io"] = os.path.join(out_dir, IO_FILE)
    io = describe_io(cpu_policy, onnx_model, action_size, groups, obs_group_sizes, dynamic_batch)
    io["files"] = {k: os.path.basename(v) for k, v in paths.items() if k != "io"}
    io.update(metadata or {})
    with open(paths["io"], "w") as f:
        json.dump(io, f, indent=2)
    return paths


def describe_io(policy: torch.nn.Module, onnx_model: torch.nn.Module, action_size: int, groups: list[str],
                obs_group_sizes: dict[str, int] | None, dynamic_batch: bool) -> dict:
    """The ``policy_io.json`` content (without files/metadata): input layout, action size, recurrent state.

    Args:
        policy: The exported rsl-rl model.
        onnx_model: Its ``as_onnx()`` wrapper (gives the ONNX input/output names).
        action_size: Number of actions A.
        groups: Observation groups of the input, in concatenation order.
        obs_group_sizes: Sizes of the env's observation groups, or None.
        dynamic_batch: Whether the ONNX batch dimension is dynamic.
    """
    batch = "batch" if dynamic_batch else 1
    recurrent = None
    state_shapes = {}
    if getattr(policy, "is_recurrent", False):
        rnn = policy.rnn.rnn
        rnn_type = "lstm" if isinstance(rnn, torch.nn.LSTM) else "gru"
        state_shapes = {name: [rnn.num_layers, batch, rnn.hidden_size] for name in onnx_model.input_names[1:]}
        recurrent = {"type": rnn_type, "num_layers": rnn.num_layers, "hidden_size": rnn.hidden_size,
                     "torchscript": "state in buffer(s) " + ", ".join(
                         ["hidden_state"] + (["cell_state"] if rnn_type == "lstm" else []))
                     + " of shape (num_layers, 1, hidden_size); call reset() at every episode start",
                     "onnx": "feed zeros at an episode start, then each step's " + ", ".join(
                         onnx_model.output_names[1:]) + " as the next step's " + ", ".join(
                         onnx_model.input_names[1:])}
    inputs = [{"name": "obs", "shape": [batch, policy.obs_dim]}] + [
        {"name": n, "shape": s} for n, s in state_shapes.items()]
    outputs = [{"name": "actions", "shape": [batch, action_size]}] + [
        {"name": n, "shape": state_shapes[i]} for n, i in zip(onnx_model.output_names[1:],
                                                            onnx_model.input_names[1:])]
    return {
        "format_version": 1,
        "obs_groups": [{"name": g, "size": obs_group_sizes[g] if obs_group_sizes else None} for g in groups],
        "obs_size": policy.obs_dim,
        "action_size": action_size,
        "deterministic": True,
        "normalization_included": bool(getattr(policy, "obs_normalization", False)),
        "recurrent": recurrent,
        "onnx": {"opset": ONNX_OPSET, "inputs": inputs, "outputs": outputs},
        "torchscript": {"forward": f"obs (1, {policy.obs_dim}) -> actions (1, {action_size})" if recurrent else
                        f"obs (B, {policy.obs_dim}) -> actions (B, {action_size})"},
    }


def _export_onnx(model: torch.nn.Module, path: str) -> bool:
    """Export ``model`` (an rsl-rl ``as_onnx()`` wrapper) to ``path`` as one self-contained file.

    The batch dimension is made dynamic; should the exporter refuse, the model is exported with rsl-rl's static
    batch of 1 instead. Returns whether the batch is dynamic.
    """
    dummy = model.get_dummy_inputs()  # obs (1, D) [, h (L, 1, H) [, c (L, 1, H)]]
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    dummy2 = (dummy[0].repeat(2, 1),) + tuple(h.repeat(1, 2, 1) for h in dummy[1:])  # batch 2: no 0/1 special case
    dynamic = ({0: batch},) + tuple({1: batch} for _ in dummy[1:])
    for inputs, shapes in ((dummy2, dynamic), (dummy, None)):
        try:
            with warnings.catch_warnings(), _quiet_exporter():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, inputs, path, input_names=model.input_names,
                                  output_names=model.output_names, opset_version=ONNX_OPSET, external_data=False,
                                  dynamic_shapes=shapes, verbose=False)
            return shapes is not None
        except Exception as err:  # noqa: BLE001  (torch.export raises many types)
            if shapes is None:
                raise
            print(f"[export] dynamic-batch ONNX export failed ({type(err).__name__}); exporting with batch 1.")
    return False


class _quiet_exporter:
    """Silence the ONNX exporter's logging (it warns about torchvision ops and None outputs) inside a block."""

    def __enter__(self) -> None:
        self._loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
        self._levels = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        for lg, level in zip(self._loggers, self._levels):
            lg.setLevel(level)
