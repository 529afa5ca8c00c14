"""pipeline.media.pictures and .sheets: Stable Diffusion pictures as files people's tools read."""

from __future__ import annotations

import base64
import io
import random
import zlib

import pytest
from PIL import Image, PngImagePlugin

from pipeline.media.pictures import PNG_SIGNATURE, infotext, parse_infotext, with_parameters

# -- helpers --------------------------------------------------------------------------------


def chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")


def kobold_png(width: int = 64, height: int = 64, seed: int = 1) -> bytes:
    """A PNG shaped as koboldcpp 1.76 writes them (stb): 8-bit RGB, chunks IHDR, an empty
    tEXt "parameters", one IDAT, IEND."""
    rng = random.Random(seed)
    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"tEXt", b"parameters\0")
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC."""
    assert png.startswith(PNG_SIGNATURE)
    found = []
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(png[pos + 8 + length : pos + 12 + length], "big")
        assert crc == zlib.crc32(kind + data), kind
        found.append((kind, data))
        pos += 12 + length
    return found


def text_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, d) for k, d in chunks(png) if k in (b"tEXt", b"zTXt", b"iTXt")]


def test_fake_kobold_png_is_shaped_like_the_capture() -> None:
    # The first bytes of capture 05 (txt2img 64x64): signature, IHDR, the empty "parameters"
    # tEXt, and the start of the IDAT length.
    captured = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAC3RFWHRwYXJhbWV0ZXJzAAmqaREAADBL"
    )
    assert kobold_png(64, 64)[: len(captured) - 4] == captured[:-4]


# -- infotext -------------------------------------------------------------------------------


def test_infotext_without_negative_prompt_has_no_negative_line() -> None:
    text = infotext("a cat", "", 20, "Euler a", 7.0, 965400086, 512, 512, "sd15")
    assert text == (
        "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, "
        "Model: sd15"
    )


def test_infotext_with_negative_prompt_and_fractional_cfg() -> None:
    text = infotext("a cat, oil painting", "blurry, lowres", 4, "DPM++ 2M", 7.5, 1, 768, 512, "m")
    assert text == (
        "a cat, oil painting\n"
        "Negative prompt: blurry, lowres\n"
        "Steps: 4, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 1, Size: 768x512, Model: m"
    )


def test_infotext_quotes_values_as_a1111_does() -> None:
    # A1111's quote(): JSON (non-ASCII kept) for a comma, colon or newline in a value.
    text = infotext("p", "", 1, "Euler a", 1, 2, 64, 64, 'v1-5: "pruned", émaonly')
    assert text.endswith('Model: "v1-5: \\"pruned\\", émaonly"')
    # Plain values stay bare, quotes and all when they do not lead.
    assert infotext("p", "", 1, "Euler a", 1, 2, 64, 64, 'say "hi"').endswith('Model: say "hi"')


def test_infotext_leaves_out_a_missing_model_and_adds_denoising_for_img2img() -> None:
    assert infotext("p", "", 1, "Euler", 7, 3, 64, 128, None) == (
        "p\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x128"
    )
    assert infotext("p", "", 1, "Euler", 7, 3, 64, 64, "", denoising_strength=0.5) == (
        "p\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x64, Denoising strength: 0.5"
    )


def test_infotext_of_an_empty_prompt_is_stripped_like_a1111() -> None:
    assert infotext("", "ugly", 1, "Euler", 7, 3, 64, 64, "m") == (
        "Negative prompt: ugly\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 64x64, "
        "Model: m"
    )


def test_infotext_refuses_a_cfg_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match="finite"):
        infotext("p", "", 1, "Euler", float("nan"), 3, 64, 64, "m")


def test_parse_reads_a1111s_own_example() -> None:
    # The example in A1111's parse_generation_parameters docstring.
    found = parse_infotext(
        "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow))\n"
        "Negative prompt: ugly, fat, (((deformed))), [blurry], bad anatomy\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, "
        "Model hash: 45dee52b"
    )
    assert found == {
        "Prompt": "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow))",
        "Negative prompt": "ugly, fat, (((deformed))), [blurry], bad anatomy",
        "Steps": "20",
        "Sampler": "Euler a",
        "CFG scale": "7",
        "Seed": "965400086",
        "Size": "512x512",
        "Model hash": "45dee52b",
    }


@pytest.mark.parametrize(
    ("prompt", "negative", "sampler", "model"),
    [
        ("a cat", "", "Euler a", "random-sd15"),
        ("a cat, (best quality:1.2)", "blurry, lowres", "DPM++ 2M", "sd_xl_base_1.0"),
        ("line one\nline two, with: colon", "neg one\nneg two", "Euler", 'a "model", v2'),
        ("猫が窓辺で眠っている, 水彩", "ぼやけた", "Euler a", "モデル: 一"),
        ('"quoted" start', "", "LCM", '"leading quote'),
        ("back\\slash", "tab\there", "Heun", "C:\\models\\x.gguf"),
        ("Steps: 3, Sampler: fake, Seed: 9", "", "Euler", "m"),  # looks like parameters
    ],
)
def test_infotext_reads_back_by_a1111s_rules(
    prompt: str, negative: str, sampler: str, model: str
) -> None:
    text = infotext(prompt, negative, 25, sampler, 6.5, 4294967295, 832, 1216, model)
    assert parse_infotext(text) == {
        "Prompt": prompt,
        "Negative prompt": negative,
        "Steps": "25",
        "Sampler": sampler,
        "CFG scale": "6.5",
        "Seed": "4294967295",
        "Size": "832x1216",
        "Model": model,
    }


# -- with_parameters ------------------------------------------------------------------------

TEXT = "a cat\nSteps: 1, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x64, Model: random-sd15"


def test_with_parameters_fills_koboldcpps_empty_chunk_and_keeps_the_pixels() -> None:
    png = kobold_png(64, 64)
    out = with_parameters(png, TEXT)
    before, after = chunks(png), chunks(out)
    assert [k for k, _ in after] == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    assert after[1] == (b"tEXt", b"parameters\0" + TEXT.encode("latin-1"))
    # Everything but the text chunk is byte for byte what koboldcpp sent.
    assert [c for c in after if c[0] != b"tEXt"] == [c for c in before if c[0] != b"tEXt"]
    assert out.replace(chunk(b"tEXt", b"parameters\0" + TEXT.encode()), b"") == png.replace(
        chunk(b"tEXt", b"parameters\0"), b""
    )
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["parameters"] == TEXT  # seen at open, before the pixels
        assert isinstance(im, PngImagePlugin.PngImageFile)
        assert im.text["parameters"] == TEXT
        with Image.open(io.BytesIO(png)) as original:
            assert im.tobytes() == original.tobytes()


def test_with_parameters_puts_text_latin1_cannot_hold_in_itxt() -> None:
    text = "猫が窓辺で眠っている, Ölgemälde 🎨\nNegative prompt: ぼやけた\n" + TEXT.split("\n")[1]
    out = with_parameters(kobold_png(), text)
    assert [k for k, _ in chunks(out)] == [b"IHDR", b"iTXt", b"IDAT", b"IEND"]
    # Uncompressed, no language, no translated keyword: what Pillow's add_text writes.
    assert text_chunks(out) == [(b"iTXt", b"parameters\0\0\0\0\0" + text.encode("utf-8"))]
    with Image.open(io.BytesIO(out)) as im:
        assert im.info["parameters"] == text
        assert im.text["parameters"] == text
    assert parse_infotext(text)["Prompt"] == "猫が窓辺で眠っている, Ölgemälde 🎨"


def test_with_parameters_writes_the_same_bytes_as_a1111_through_pillow() -> None:
    # A1111 saves with PngInfo.add_text: tEXt for Latin-1 text, iTXt otherwise.
    for text in (TEXT, "café crème\nSteps: 1", "日本\nSteps: 1"):
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", text)
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, "PNG", pnginfo=info)
        assert text_chunks(with_parameters(kobold_png(), text)) == text_chunks(buf.getvalue())


def test_with_parameters_replaces_every_old_parameters_chunk_and_keeps_other_text() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "some tool")
    info.add_text("parameters", "old one", zip=True)  # zTXt
    info.add_itxt("parameters", "older one")
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), "red").save(buf, "PNG", pnginfo=info)
    png = buf.getvalue()
    out = with_parameters(with_parameters(png, "first"), TEXT)
    assert text_chunks(out) == [
        (b"tEXt", b"Software\0some tool"),
        (b"tEXt", b"parameters\0" + TEXT.encode()),
    ]
    others = [c for c in chunks(png) if c[0] not in (b"tEXt", b"zTXt", b"iTXt")]
    assert [c for c in chunks(out) if c[0] != b"tEXt"] == others


def test_with_parameters_adds_the_chunk_before_the_pixels_when_there_is_none() -> None:
    im = Image.frombytes("RGB", (400, 400), random.Random(2).randbytes(400 * 400 * 3))
    buf = io.BytesIO()
    im.save(buf, "PNG")  # noise: several IDAT chunks, no text
    png = buf.getvalue()
    kinds = [k for k, _ in chunks(with_parameters(png, TEXT))]
    assert kinds.index(b"tEXt") == kinds.index(b"IDAT") - 1 == 1
    assert kinds.count(b"IDAT") == [k for k, _ in chunks(png)].count(b"IDAT") > 1


def test_with_parameters_moves_text_found_after_the_pixels_in_front_of_them() -> None:
    png = kobold_png()
    parts = chunks(png)
    reordered = PNG_SIGNATURE + b"".join(
        chunk(k, d) for k, d in (parts[0], parts[2], (b"tEXt", b"parameters\0late"), parts[3])
    )
    assert [k for k, _ in chunks(with_parameters(reordered, TEXT))] == [
        b"IHDR",
        b"tEXt",
        b"IDAT",
        b"IEND",
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not a PNG"),
        (b"\xff\xd8\xff\xe0 a JPEG", "not a PNG"),
        (kobold_png()[:-20], "truncated PNG"),
        (PNG_SIGNATURE + chunk(b"IDAT", b"x") + chunk(b"IEND", b""), "IHDR"),
        (kobold_png().replace(b"IDAT", b"IDA\0"), "corrupt PNG"),
        (kobold_png()[:56] + chunk(b"IEND", b""), "no image data"),
    ],
    ids=["empty", "jpeg", "truncated", "no-ihdr", "bad-chunk-type", "no-idat"],
)
def test_with_parameters_refuses_what_is_not_a_whole_png(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        with_parameters(data, TEXT)


def test_with_parameters_refuses_a_nul_in_the_text() -> None:
    with pytest.raises(ValueError, match="NUL"):
        with_parameters(kobold_png(), "a\0b")


def test_with_parameters_keeps_bytes_after_iend() -> None:
    png = kobold_png() + b"trailing"
    assert with_parameters(png, TEXT).endswith(chunk(b"IEND", b"") + b"trailing")
