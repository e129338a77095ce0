"""What a DALI pipeline runs where, read from its serialised form (no GPU needed).

`Pipeline.serialize()` works on a pipeline that was never built, with `device_id=None`, even when
it holds GPU operators: DALI only needs a GPU to build. The bytes are the `PipelineDef` protobuf
of DALI's `dali.proto` (op = 5, pipe_outputs = 7; OpDef: name = 1, input = 2, output = 3, args = 4,
inst_name = 5; InputOutput: name = 1, device = 2, is_argument_input = 3; Argument: name = 1,
strings = 5). The few fields read here are decoded
directly (protobuf's wire format), so no protobuf package is needed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    schema: str  # DALI's operator schema, e.g. "decoders__Video", "Resize"
    instance: str  # the instance name ("reader" for the named reader)
    device: str  # cpu | mixed | gpu (the `device` argument)
    inputs: tuple[tuple[str, str], ...]  # (name, device) of each data input (not argument inputs)
    arg_inputs: tuple[str, ...]  # names of the argument inputs (always on the CPU)
    outputs: tuple[tuple[str, str], ...]  # (name, device) of each output


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """(field number, value) of one message: ints for varints, bytes for length-delimited."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a serialised DALI pipeline")
        yield number, value


def _string_field(msg: bytes, number: int) -> str:
    return next((v.decode() for n, v in _fields(msg) if n == number), "")


def operators(serialized: bytes) -> list[Op]:
    """Every operator of a serialised pipeline, in DALI's order."""
    ops = []
    for number, op in _fields(serialized):
        if number != 5:
            continue
        schema = instance = device = ""
        inputs, arg_inputs, outputs = [], [], []
        for n, v in _fields(op):
            if n == 1:
                schema = v.decode()
            elif n == 2:
                if any(k == 3 and x for k, x in _fields(v)):
                    arg_inputs.append(_string_field(v, 1))
                else:
                    inputs.append((_string_field(v, 1), _string_field(v, 2)))
            elif n == 3:
                outputs.append((_string_field(v, 1), _string_field(v, 2)))
            elif n == 4 and _string_field(v, 1) == "device":
                device = _string_field(v, 5)
            elif n == 5:
                instance = v.decode()
        ops.append(Op(schema, instance, device, tuple(inputs), tuple(arg_inputs), tuple(outputs)))
    return ops


# Operators that read only a tensor's shape, never its data (`DataNode.shape()`): a CPU one may
# take a GPU input without any copy.
SHAPE_ONLY = frozenset({"_Shape"})


def fed_by(ops: list[Op], source: Op) -> list[Op]:
    """`source` and every operator its outputs reach through data inputs (not argument inputs,
    not `SHAPE_ONLY` readers): for the decoder, the pixel path."""
    reached, names = [source], {name for name, _ in source.outputs}
    for op in ops:  # DALI serialises operators in topological order
        if op is not source and op.schema not in SHAPE_ONLY and any(name in names for name, _ in op.inputs):
            reached.append(op)
            names |= {name for name, _ in op.outputs}
    return reached


def pipeline_outputs(serialized: bytes) -> list[tuple[str, str]]:
    """(name, device) of the pipeline's outputs, in order."""
    return [(_string_field(v, 1), _string_field(v, 2)) for n, v in _fields(serialized) if n == 7]
