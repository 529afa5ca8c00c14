"""pipeline.media.pictures and .sheets: Stable Diffusion pictures as files people's tools read."""

from __future__ import annotations

import base64
import io
import os
import random
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat, PngImagePlugin

from pipeline.media import ImageError
from pipeline.media.pictures import (
    PNG_SIGNATURE,
    InitImage,
    infotext,
    init_image_for_img2img,
    output_size,
    parse_infotext,
    with_parameters,
)
from pipeline.media.sheets import (
    BACKGROUND,
    PLACEHOLDER,
    SheetLayout,
    contact_sheet,
    fit_label,
    safe_name,
)
from tests.conftest import CORPUS

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


# -- init_image_for_img2img -----------------------------------------------------------------


def init_picture(init: InitImage) -> Image.Image:
    """The init PNG, checked to be what koboldcpp's stb decoder takes: 8-bit RGB, 64..1024."""
    ihdr = chunks(init.png)[0]
    assert ihdr[0] == b"IHDR" and ihdr[1][8:10] == bytes([8, 2])  # bit depth 8, colour type 2
    im = Image.open(io.BytesIO(init.png))
    assert im.format == "PNG" and im.mode == "RGB" and "transparency" not in im.info
    assert all(64 <= side <= 1024 for side in im.size), im.size
    assert init.width % 64 == 0 and init.height % 64 == 0
    assert 64 <= init.width <= 1024 and 64 <= init.height <= 1024
    return im


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def saved(tmp_path: Path, name: str, im: Image.Image, **options: object) -> Path:
    path = tmp_path / name
    im.save(path, **options)
    return path


@pytest.mark.parametrize("shape", ["portrait", "landscape"])
def test_init_image_is_upright_for_all_eight_orientations(shape: str) -> None:
    # The corpus stores one scene with each EXIF orientation; upright, all look alike.
    inits = [
        init_image_for_img2img(CORPUS / "orientation" / f"{shape}_{n}.jpg", 512)
        for n in range(1, 9)
    ]
    size = (384, 512) if shape == "portrait" else (512, 384)
    reference = init_picture(inits[0])
    for n, init in enumerate(inits, start=1):
        im = init_picture(init)
        assert im.size == size and (init.width, init.height) == size, n
        upright = difference(im, reference)
        assert upright < 25, n
        for method in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM):
            assert difference(im.transpose(method), reference) > upright + 15, (n, method)


def test_init_image_of_real_camera_photos() -> None:
    cases = {
        "hdr/canon_hdr_NO.jpg": ((768, 1024), (768, 1024)),  # 2048x1536 stored, orientation 6
        "mobile/HMD_Nokia_8.3_5G.jpg": ((1024, 439), (1024, 384)),  # 4608x1976
        "mobile/jolla.jpg": ((1024, 768), (1024, 768)),
    }
    for name, (init_size, out_size) in cases.items():
        init = init_image_for_img2img(CORPUS / name, 1024)
        assert init_picture(init).size == init_size, name
        assert (init.width, init.height) == out_size, name


def test_init_image_flattens_alpha_onto_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # transparent black...
    im.paste((255, 0, 0, 255), (0, 0, 100, 100))  # ...with an opaque red half
    init = init_image_for_img2img(saved(tmp_path, "a.png", im), 512)
    picture = init_picture(init)
    assert picture.size == (512, 256) and (init.width, init.height) == (512, 256)
    assert picture.getpixel((64, 128)) == pytest.approx((255, 0, 0), abs=8)
    assert picture.getpixel((448, 128)) == pytest.approx((255, 255, 255), abs=8)


def test_init_image_of_a_palette_png_with_transparency(tmp_path: Path) -> None:
    im = Image.new("P", (100, 100), 0)
    im.putpalette([0, 0, 0, 0, 0, 255])
    im.paste(1, (0, 0, 50, 100))
    path = saved(tmp_path, "p.png", im, transparency=0)
    picture = init_picture(init_image_for_img2img(path, 256))
    assert picture.getpixel((32, 128)) == pytest.approx((0, 0, 255), abs=8)
    assert picture.getpixel((224, 128)) == pytest.approx((255, 255, 255), abs=8)


def test_init_image_of_a_tiny_picture_is_scaled_up(tmp_path: Path) -> None:
    # koboldcpp answers an empty image for an init picture under 64 px.
    init = init_image_for_img2img(
        saved(tmp_path, "icon.png", Image.new("RGB", (16, 16), "green")), 512
    )
    assert init_picture(init).size == (512, 512) and (init.width, init.height) == (512, 512)
    small = init_image_for_img2img(saved(tmp_path, "s.png", Image.new("RGB", (16, 8))), 64)
    assert init_picture(small).size == (64, 64) and (small.width, small.height) == (64, 64)


@pytest.mark.parametrize(
    ("size", "init_size", "out_size"),
    [
        ((4000, 300), (1024, 77), (1024, 64)),
        ((300, 4000), (77, 1024), (64, 1024)),
        ((4000, 100), (1024, 64), (1024, 64)),  # past 16:1 the short side is stretched to 64
        ((6000, 20), (1024, 64), (1024, 64)),
    ],
)
def test_init_image_of_a_panorama_keeps_each_side_in_range(
    tmp_path: Path, size: tuple[int, int], init_size: tuple[int, int], out_size: tuple[int, int]
) -> None:
    path = saved(tmp_path, "pano.jpg", Image.new("RGB", size, (30, 120, 200)), quality=90)
    init = init_image_for_img2img(path, 1024)
    assert init_picture(init).size == init_size
    assert (init.width, init.height) == out_size


def test_init_image_of_a_greyscale_jpeg_is_rgb(tmp_path: Path) -> None:
    im = Image.linear_gradient("L").resize((300, 200))
    picture = init_picture(init_image_for_img2img(saved(tmp_path, "grey.jpg", im), 300))
    r, g, b = picture.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()
    assert picture.getpixel((150, 10))[0] < 40 and picture.getpixel((150, 190))[0] > 215


def test_init_image_of_a_cmyk_jpeg_is_rgb(tmp_path: Path) -> None:
    im = Image.new("CMYK", (320, 240), (255, 0, 0, 0))  # cyan
    im.paste((0, 0, 0, 255), (0, 0, 160, 240))  # left half black
    picture = init_picture(init_image_for_img2img(saved(tmp_path, "cmyk.jpg", im, quality=95), 320))
    assert picture.size == (320, 240)
    assert picture.getpixel((60, 120)) == pytest.approx((0, 0, 0), abs=12)
    assert picture.getpixel((260, 120)) == pytest.approx((0, 255, 255), abs=12)


def test_init_image_refuses_sizes_koboldcpp_cannot_take(tmp_path: Path) -> None:
    path = saved(tmp_path, "a.png", Image.new("RGB", (100, 100)))
    for long_side in (63, 1025, 0):
        with pytest.raises(ValueError, match="long_side"):
            init_image_for_img2img(path, long_side)


def test_init_image_of_a_file_that_is_not_an_image_says_why(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(ImageError, match="not an image"):
        init_image_for_img2img(tmp_path / "notes.jpg", 512)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(kobold_png(200, 200)[:3000])
    with pytest.raises(ImageError):
        init_image_for_img2img(truncated, 512)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((512, 512), (512, 512)),
        ((1024, 683), (1024, 640)),
        ((700, 467), (640, 448)),
        ((63, 63), (64, 64)),  # as koboldcpp: rounded down, then at least 64
        ((2000, 1000), (1024, 512)),  # long side first brought to 1024
        ((1024, 64), (1024, 64)),
    ],
)
def test_output_size_is_what_koboldcpp_draws(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert output_size(*size) == expected


# -- contact_sheet --------------------------------------------------------------------------

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 60), (30, 60, 220)


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 16) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def has_text(sheet: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Whether anything but the background was drawn in `box`."""
    region = sheet.crop(box)
    plain = Image.new("RGB", region.size, BACKGROUND)
    return (
        ImageChops.difference(region, plain).convert("L").point(lambda v: v > 40).getbbox()
        is not None
    )


def test_contact_sheet_of_three_pictures_and_a_corrupt_file(tmp_path: Path) -> None:
    photo = saved(tmp_path, "photo.jpg", Image.new("RGB", (1200, 800), BLUE), quality=90)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(kobold_png(300, 300)[:2000])
    items = [
        ("red.png", png_bytes(RED)),
        ("green.png", png_bytes(GREEN, (300, 100))),
        ("photo.jpg", photo),
        ("broken.png", corrupt),
    ]
    out = tmp_path / "sheet.jpg"
    assert contact_sheet(items, out, cell=128) == [out]
    layout = SheetLayout(128)
    with Image.open(out) as sheet:
        assert sheet.format == "JPEG"
        # Four cells in one row: a batch shorter than a row gets a sheet as wide as it needs.
        assert sheet.size == layout.size(4, 1)
        sheet = sheet.convert("RGB")
    centres = [
        ((x0 + x1) // 2, (y0 + y1) // 2)
        for x0, y0, x1, y1 in (layout.picture_box(4, i) for i in range(4))
    ]
    assert near(sheet.getpixel(centres[0]), RED)
    assert near(sheet.getpixel(centres[1]), GREEN)
    assert near(sheet.getpixel(centres[2]), BLUE)
    # The wide green picture keeps its shape: background above and below it.
    x0, y0, x1, y1 = layout.picture_box(4, 1)
    assert near(sheet.getpixel(((x0 + x1) // 2, y0 + 5)), BACKGROUND)
    # The corrupt file is a placeholder with words on it, not a crash.
    x0, y0, x1, y1 = layout.picture_box(4, 3)
    assert near(sheet.getpixel((x0 + 3, y0 + 3)), PLACEHOLDER)
    for i in range(4):
        assert has_text(sheet, layout.label_box(4, i)), i
    assert not has_text(sheet, (0, 0, sheet.width, layout.pad // 2))
    assert sorted(os.listdir(tmp_path)) == ["broken.png", "photo.jpg", "sheet.jpg"]  # no temp


def test_contact_sheet_pages_a_big_batch(tmp_path: Path) -> None:
    picture = png_bytes(GREEN, (40, 40))
    out = tmp_path / "run.png"
    pages = contact_sheet(((f"p{i:04d}.png", picture) for i in range(1001)), out, cell=32)
    assert [p.name for p in pages] == ["run.png"] + [f"run-{n}.png" for n in range(2, 12)]
    layout = SheetLayout(32)
    for page in pages[:-1]:
        with Image.open(page) as im:
            assert im.format == "PNG" and im.size == layout.size(10, 10)
    with Image.open(pages[-1]) as last:
        assert last.size == layout.size(10, 1)  # full width, one row for the 1,001st


def test_contact_sheet_consumes_items_lazily(tmp_path: Path) -> None:
    out = tmp_path / "sheet.webp"
    seen_on_disk: list[list[str]] = []

    def items() -> Iterator[tuple[str, bytes]]:
        for i in range(9):
            seen_on_disk.append(sorted(p.name for p in tmp_path.iterdir()))
            yield f"{i}.png", png_bytes(RED)

    pages = contact_sheet(items(), out, columns=2, rows=2, cell=32)
    assert [p.name for p in pages] == ["sheet.webp", "sheet-2.webp", "sheet-3.webp"]
    # Each sheet is written as soon as it is full, before the next item is even asked for:
    # the batch is never held whole.
    assert seen_on_disk[3] == []
    assert seen_on_disk[4] == ["sheet.webp"]
    assert seen_on_disk[8] == ["sheet-2.webp", "sheet.webp"]
    with Image.open(pages[-1]) as im:
        assert im.format == "WEBP" and im.size == SheetLayout(32).size(2, 1)


def test_contact_sheet_of_nothing_writes_nothing(tmp_path: Path) -> None:
    assert contact_sheet([], tmp_path / "sheet.jpg") == []
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_replaces_the_old_sheet_whole(tmp_path: Path) -> None:
    out = tmp_path / "sheet.jpg"
    out.write_bytes(b"old")
    contact_sheet([("a", png_bytes(RED))], out, cell=64)
    with Image.open(out) as im:
        assert im.size == SheetLayout(64).size(1, 1)
    assert os.listdir(tmp_path) == ["sheet.jpg"]


def test_contact_sheet_leaves_no_temporary_file_when_it_fails(tmp_path: Path) -> None:
    def items() -> Iterator[tuple[str, bytes]]:
        yield "a", png_bytes(RED)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        contact_sheet(items(), tmp_path / "sheet.jpg", cell=64)
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_applies_exif_orientation(tmp_path: Path) -> None:
    im = Image.new("RGB", (200, 100), RED)  # stored landscape...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...displayed turned a quarter: portrait
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    path = saved(tmp_path, "turned.jpg", im, exif=exif)
    for source in (buf.getvalue(), path):
        out = tmp_path / "sheet.png"
        contact_sheet([("turned.jpg", source)], out, cell=100)
        with Image.open(out) as sheet:
            x0, y0, x1, y1 = SheetLayout(100).picture_box(1, 0)
            assert near(sheet.getpixel((x0 + 50, y0 + 2)), RED)  # tall: touches the top
            assert near(sheet.getpixel((x0 + 2, y0 + 50)), BACKGROUND)  # not the sides


@pytest.mark.parametrize(
    ("name", "bad"),
    [("sheet.gif", "must be .jpg"), ("sheet", "must be .jpg")],
)
def test_contact_sheet_refuses_formats_it_does_not_write(
    tmp_path: Path, name: str, bad: str
) -> None:
    def items() -> Iterator[tuple[str, bytes]]:
        raise AssertionError("read before the arguments were checked")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match=bad):
        contact_sheet(items(), tmp_path / name)


def test_contact_sheet_refuses_a_sheet_too_big_to_look_at(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fewer columns"):
        contact_sheet([], tmp_path / "s.jpg", columns=100, rows=100, cell=256)


def test_safe_name_shows_control_characters_as_escapes() -> None:
    assert safe_name("a\nb\x1b[31m.png") == "a\\nb\\x1b[31m.png"
    assert safe_name("line\nbreak\tand\x7f") == "line\\nbreak\\tand\\x7f"
    assert safe_name("photo\u202egpj.exe") == "photo\\u202egpj.exe"  # no right-to-left trick
    assert safe_name(os.fsdecode(b"caf\xe9.png")) == "caf\\xe9.png"  # a Latin-1 byte on disk
    assert safe_name("猫 café.png") == "猫 café.png"


def test_fit_label_shortens_long_names_in_the_middle() -> None:
    font = SheetLayout(128).font
    name = "IMG_" + "very-long-description-" * 10 + "0042.png"
    label = fit_label(name, font, 128)
    assert font.getlength(label) <= 128
    assert label.startswith("IMG_") and label.endswith("0042.png") and "…" in label
    assert fit_label("short.png", font, 128) == "short.png"
    assert fit_label("x" * 50, font, 1) == "…"
