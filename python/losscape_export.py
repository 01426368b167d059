"""Export a PyTorch model (and optionally a dataset) for losscape in one call.

    from losscape_export import export, export_data
    export(model, example_input, "model.onnx")          # then: losscape describe --model model.onnx
    export_data("data.safetensors", inputs, labels)     # then: --data safetensors:data.safetensors

`export` runs torch.onnx.export with the settings losscape's import needs:

- the model in eval mode with ``training=TrainingMode.PRESERVE`` and ``do_constant_folding=False``,
  so BatchNorm stays a BatchNormalization node (not folded into the convolutions) and every
  initializer keeps its ``state_dict`` name;
- torch.onnx's merging of initializers with equal values (it would make all-ones LayerNorm
  weights, or the deep-copied layers of an untrained nn.TransformerEncoder, one shared tensor)
  switched off for the export;
- a symbolic batch axis on the first input and output;
- the model's ``named_parameters()`` and float buffers, with shapes, in the ONNX metadata
  (``losscape.parameters``, ``losscape.buffers``, ``losscape.tied``), so that losscape takes
  exactly those tensors as parameters, whatever ops read them.

Needs only PyTorch (no onnx package): the metadata is appended to the file as protobuf fields.
Written for PyTorch 1.13 and later.
"""

import contextlib
import json
import struct

import torch

__all__ = ["export", "export_data"]

_DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
}


def export(model, example_input, path, *, opset=14, input_names=None, output_names=None, dynamic_batch=True):
    """Writes ``model`` as ONNX to ``path`` for losscape; returns the list of parameter names.

    ``example_input`` is one tensor or a tuple of tensors (a batch of any size). The model is
    exported in eval mode and left in the mode it was in.
    """
    inputs = example_input if isinstance(example_input, tuple) else (example_input,)
    input_names = list(input_names or (["input"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]))
    output_names = list(output_names or ["logits"])
    dynamic_axes = {name: {0: "N"} for name in input_names + output_names} if dynamic_batch else None
    was_training = model.training
    model.eval()
    try:
        with _no_initializer_merging():
            torch.onnx.export(
                model,
                inputs,
                path,
                training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=False,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
            )
    finally:
        model.train(was_training)
    params, tied = _parameters(model)
    buffers = [
        {"name": name, "shape": list(b.shape)}
        for name, b in model.named_buffers()
        if b.dtype.is_floating_point
    ]
    _append_metadata(
        path,
        {
            "losscape.parameters": json.dumps(params),
            "losscape.buffers": json.dumps(buffers),
            "losscape.tied": json.dumps(tied),
            "losscape.exporter": f"losscape_export 1; torch {torch.__version__}",
        },
    )
    return [p["name"] for p in params]


def export_data(path, inputs, labels=None, **more):
    """Writes tensors as a safetensors file (keys ``x``, ``y`` and any ``more``) without the safetensors package."""
    tensors = {"x": inputs}
    if labels is not None:
        tensors["y"] = labels
    tensors.update(more)
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = torch.as_tensor(t).detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f"export_data(): tensor '{name}' has dtype {t.dtype}; supported: {sorted(str(d) for d in _DTYPES)}")
        data = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    import os

    os.replace(tmp, path)


def _parameters(model):
    """named_parameters() with shapes and trainability, and the extra names of tied (shared) parameters."""
    params = [
        {"name": name, "shape": list(p.shape), "trainable": bool(p.requires_grad)}
        for name, p in model.named_parameters()
    ]
    first = {}
    tied = []
    for module_name, module in model.named_modules():
        for key, p in module._parameters.items():
            if p is None:
                continue
            name = f"{module_name}.{key}" if module_name else key
            if id(p) in first and first[id(p)] != name:
                tied.append([name, first[id(p)]])
            first.setdefault(id(p), name)
    return params, tied


@contextlib.contextmanager
def _no_initializer_merging():
    """torch.onnx (1.12+) merges initializers with equal values in eval-mode exports; keep them apart."""
    c = torch._C
    name = "_jit_pass_onnx_deduplicate_initializers"
    original = getattr(c, name, None)
    if original is None:
        yield
        return
    setattr(c, name, lambda graph, params_dict, is_train: params_dict)
    try:
        yield
    finally:
        setattr(c, name, original)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _append_metadata(path, entries):
    """Appends ModelProto.metadata_props entries (field 14) to an ONNX file."""
    blob = b"".join(
        _field(14, _field(1, key.encode()) + _field(2, value.encode())) for key, value in entries.items()
    )
    with open(path, "ab") as f:
        f.write(blob)
