#!/usr/bin/env python3
"""Copy a GGUF model and add an explicit `output.weight` equal to `token_embd.weight`.

Why: models with tied input/output embeddings (SmolLM2, many small llama-architecture models)
ship no `output.weight` tensor. llama.cpp before ~April 2024 (e.g. the one vendored in the
llama-cpp-python 0.2.5x sdists, used by build-llama-server-old.sh) requires it for the llama
architecture and fails with "create_tensor: tensor 'output.weight' not found". Writing the
shared matrix a second time under that name makes the model load there without changing its
math (newer llama.cpp loads either form).

Usage: python gguf-untie-output.py IN.gguf OUT.gguf     (needs: pip install gguf numpy)
All metadata and tensors are copied byte for byte (quantized data stays as it is).
"""

import sys

import gguf


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(src)
    names = [t.name for t in reader.tensors]
    if "output.weight" in names:
        sys.exit(f"{src} already has output.weight")
    if "token_embd.weight" not in names:
        sys.exit(f"{src} has no token_embd.weight")

    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = int(alignment.contents())

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter / virtual
        val_type = field.types[0]
        sub_type = field.types[-1] if val_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), val_type, sub_type=sub_type)

    tensors = list(reader.tensors)
    tied = next(t for t in tensors if t.name == "token_embd.weight")
    out = [(t.name, t) for t in tensors] + [("output.weight", tied)]
    for name, t in out:
        writer.add_tensor_info(name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, t in out:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()
    print(
        f"wrote {dst}: {len(out)} tensors (output.weight = copy of token_embd.weight, "
        f"{tied.tensor_type.name})"
    )


if __name__ == "__main__":
    main()
