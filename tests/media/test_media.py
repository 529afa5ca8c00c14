"""pipeline.media: preparing photos for a vision model, and reading their EXIF."""

from __future__ import annotations

import io
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageStat
from PIL.JpegImagePlugin import JpegImageFile

from pipeline.media import (
    ImageError,
    PreparedImage,
    formats,
    heif,
    images,
    pillow_source,
    prepare_image,
    read_metadata,
    real_extension,
    vips_source,
)
from pipeline.media.budget import PixelBudget
from pipeline.media.pillow_source import PillowSource
from tests.conftest import CORPUS
from tests.fakes.photos import LARGE_THUMBNAIL_FULL_HD, UNDEFINED, save_with_frames

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "photos"

pillow_heif.register_heif_opener()  # to write test photos; pipe reads HEIC on its own

RED, WHITE = (255, 0, 0), (255, 255, 255)
BLUE, GREEN = (0, 0, 255), (0, 255, 0)
DISPARITY = 0x020002  # a stereo camera's second eye: a whole other photo, not a preview


def decoded(prepared: PreparedImage) -> Image.Image:
    im = Image.open(io.BytesIO(prepared.jpeg))
    assert im.format == "JPEG" and im.mode == "RGB"
    assert im.size == (prepared.width, prepared.height)
    return im


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def close(color: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(c - e) <= tolerance for c, e in zip(color, expected, strict=False))


# -- prepare_image: orientation, size, draft ------------------------------------------------


def test_all_eight_orientations_display_alike() -> None:
    # max_side 300 halves the 600x450 photos, so draft and orientation are exercised together.
    results = [prepare_image(SAMPLES / f"landscape_{n}.jpg", max_side=300) for n in range(1, 9)]
    reference = decoded(results[0])
    for n, prepared in enumerate(results, start=1):
        assert (prepared.original_width, prepared.original_height) == (600, 450), n
        assert (prepared.width, prepared.height) == (300, 225), n
        im = decoded(prepared)
        upright = difference(im, reference)
        assert upright < 25, n
        # Any other flip or rotation of the result would match the reference worse.
        for method in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM):
            assert difference(im.transpose(method), reference) > upright + 15, (n, method)


def test_portrait_orientations_from_corpus() -> None:
    reference = decoded(prepare_image(CORPUS / "orientation" / "portrait_1.jpg", max_side=300))
    for n in range(1, 9):
        prepared = prepare_image(CORPUS / "orientation" / f"portrait_{n}.jpg", max_side=300)
        assert (prepared.width, prepared.height) == (225, 300), n
        assert (prepared.original_width, prepared.original_height) == (450, 600), n
        assert difference(decoded(prepared), reference) < 25, n


def test_big_jpeg_is_drafted_rotated_and_marked_pixels_land_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stored landscape 6000x4000 with a red top-left corner; orientation 6 = rotate 90 CW,
    # so it displays as 4000x6000 portrait with the red corner at the top right.
    photo = Image.linear_gradient("L").resize((6000, 4000)).convert("RGB")
    photo.paste(RED, (0, 0, 1200, 1200))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "big.jpg"
    photo.save(path, quality=80, exif=exif.tobytes())

    drafted: list[tuple[int, int]] = []
    original_draft = JpegImageFile.draft

    def spy(self: JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        result = original_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    prepared = prepare_image(path)

    assert drafted == [(1500, 1000)]  # 1/4 scale: the smallest that is still >= 1024x683
    assert (prepared.width, prepared.height) == (683, 1024)
    assert (prepared.original_width, prepared.original_height) == (4000, 6000)
    assert (prepared.format, prepared.extension) == ("JPEG", ".jpg")
    im = decoded(prepared)
    assert close(im.getpixel((683 - 40, 40)), RED)  # top right
    assert not close(im.getpixel((40, 40)), RED)
    assert not close(im.getpixel((683 - 40, 1024 - 40)), RED)
    assert Image.open(io.BytesIO(prepared.jpeg)).getexif().get(0x0112) is None  # no re-rotation


def test_small_images_are_not_enlarged_and_quality_is_used(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.effect_noise((200, 100), 60).convert("RGB").save(path)
    low = prepare_image(path, quality=20)
    high = prepare_image(path, quality=95)
    assert (low.width, low.height) == (200, 100) == (high.width, high.height)
    assert len(low.jpeg) < len(high.jpeg)


def test_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        prepare_image(SAMPLES / "landscape_1.jpg", max_side=0)
    with pytest.raises(ValueError):
        prepare_image(SAMPLES / "landscape_1.jpg", quality=101)


# -- prepare_image: a camera's own preview ------------------------------------------------


def camera_jpeg(
    path: Path, frames: list[tuple[tuple[int, int], tuple[int, int, int], int]]
) -> Path:
    """A red 3000x2000 photo (orientation 6) carrying frames of (size, colour, MP Type):
    the colour of what prepare_image returns tells which one it decoded."""
    exif = Image.Exif()
    exif[0x0112] = 6
    extra = [(Image.new("RGB", size, colour), mp_type) for size, colour, mp_type in frames]
    return save_with_frames(path, Image.new("RGB", (3000, 2000), RED), extra, exif=exif)


def test_camera_preview_spares_decoding_the_photo(tmp_path: Path) -> None:
    path = camera_jpeg(
        tmp_path / "DSC01.JPG",
        [
            ((2400, 1600), GREEN, LARGE_THUMBNAIL_FULL_HD),
            ((1536, 1024), BLUE, LARGE_THUMBNAIL_FULL_HD),  # the smallest that is big enough
        ],
    )
    prepared = prepare_image(path)
    assert close(decoded(prepared).getpixel((300, 500)), BLUE)
    # Sizes and orientation are the photo's: the preview is stored the way it is.
    assert (prepared.width, prepared.height) == (683, 1024)
    assert (prepared.original_width, prepared.original_height) == (2000, 3000)
    assert (prepared.format, prepared.extension) == ("JPEG", ".jpg")


@pytest.mark.parametrize(
    ("size", "mp_type", "max_side"),
    [
        ((1536, 1024), UNDEFINED, 1024),  # what Pillow writes; also HDR gain maps
        ((1536, 1024), DISPARITY, 1024),
        ((960, 640), LARGE_THUMBNAIL_FULL_HD, 1024),  # smaller than asked for
        ((1536, 1024), LARGE_THUMBNAIL_FULL_HD, 2000),
        ((1024, 1024), LARGE_THUMBNAIL_FULL_HD, 1024),  # cropped to another shape
        ((1024, 1536), LARGE_THUMBNAIL_FULL_HD, 1024),  # stored turned
    ],
)
def test_photo_itself_when_no_preview_fits(
    tmp_path: Path, size: tuple[int, int], mp_type: int, max_side: int
) -> None:
    path = camera_jpeg(tmp_path / "DSC02.JPG", [(size, BLUE, mp_type)])
    prepared = prepare_image(path, max_side=max_side)
    assert max(prepared.width, prepared.height) == max_side
    assert close(decoded(prepared).getpixel((100, 100)), RED)


def test_damaged_preview_falls_back_to_the_photo(tmp_path: Path) -> None:
    path = camera_jpeg(tmp_path / "DSC03.JPG", [((1536, 1024), BLUE, LARGE_THUMBNAIL_FULL_HD)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])  # the preview is last: its scan is cut short
    assert close(decoded(prepare_image(path)).getpixel((100, 100)), RED)
    path.write_bytes(data[: data.rindex(b"\xff\xd8") + 40])  # its header too
    assert close(decoded(prepare_image(path)).getpixel((100, 100)), RED)


# -- prepare_image: formats and modes ------------------------------------------------------


def test_png_named_jpg_is_a_good_png(tmp_path: Path) -> None:
    path = tmp_path / "holiday.jpg"
    Image.new("RGB", (40, 30), RED).save(path, "PNG")
    prepared = prepare_image(path)
    assert (prepared.format, prepared.extension) == ("PNG", ".png")
    assert close(decoded(prepared).getpixel((20, 15)), RED)
    assert real_extension(path) == ".png"


def test_rgba_png_is_composited_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    im = Image.new("RGBA", (100, 50), (0, 0, 0, 0))  # transparent *black*
    im.paste((255, 0, 0, 255), (0, 0, 50, 50))
    im.save(path)
    out = decoded(prepare_image(path))
    assert close(out.getpixel((25, 25)), RED)
    assert close(out.getpixel((75, 25)), WHITE)


def test_png_transparent_colour_becomes_white(tmp_path: Path) -> None:
    path = tmp_path / "key.png"
    im = Image.new("RGB", (40, 20), RED)
    im.paste((0, 0, 255), (20, 0, 40, 20))
    im.save(path, transparency=RED)  # tRNS: every red pixel is transparent
    out = decoded(prepare_image(path))
    assert close(out.getpixel((5, 10)), WHITE)
    assert close(out.getpixel((35, 10)), (0, 0, 255))


def test_palette_gif_with_transparency_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    first = Image.new("P", (60, 40), 0)
    first.putpalette([0, 0, 0] + [255, 0, 0] + [0, 0, 255] + [0, 0, 0] * 253)
    first.paste(1, (0, 0, 30, 40))  # left half red, right half index 0 = transparent
    second = Image.new("P", (60, 40), 2)
    second.putpalette(first.getpalette())
    first.save(path, save_all=True, append_images=[second], transparency=0, duration=100)
    prepared = prepare_image(path)
    assert (prepared.format, prepared.extension) == ("GIF", ".gif")
    out = decoded(prepared)
    assert close(out.getpixel((10, 20)), RED)
    assert close(out.getpixel((50, 20)), WHITE)


def test_16bit_tiff_keeps_its_tones(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    ramp = Image.linear_gradient("L").resize((64, 256))  # black at the top, white below
    ramp.point(lambda v: v * 257, "I").convert("I;16").save(path)
    assert Image.open(path).mode == "I;16"
    prepared = prepare_image(path)
    assert (prepared.format, prepared.extension) == ("TIFF", ".tif")
    out = decoded(prepared)
    dark, bright = out.getpixel((32, 5))[0], out.getpixel((32, 250))[0]
    assert dark < 30 and bright > 225  # scaled, not clipped to white


@pytest.mark.parametrize(
    ("mode", "color", "kwargs"),
    [
        ("CMYK", (0, 255, 255, 0), {}),  # CMYK JPEG
        ("L", 128, {}),
        ("LA", (128, 255), {"format": "PNG"}),
        ("P", 1, {"format": "PNG"}),
        ("1", 1, {"format": "PNG"}),
        ("RGB", RED, {"format": "WEBP"}),
    ],
)
def test_other_modes_become_rgb(
    tmp_path: Path, mode: str, color: object, kwargs: dict[str, str]
) -> None:
    path = tmp_path / "image.jpg"
    im = Image.new(mode, (40, 30), color)  # type: ignore[arg-type]
    if mode == "P":
        im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.save(path, **kwargs)
    prepared = prepare_image(path)
    assert prepared.format == kwargs.get("format", "JPEG")
    pixel = decoded(prepared).getpixel((20, 15))
    if mode in ("CMYK", "P", "RGB"):
        assert close(pixel, RED, 40)
    else:
        assert len(set(pixel)) == 1  # grey stays grey


def test_heic_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (64, 48), RED).save(path, "HEIF")
    prepared = prepare_image(path)
    assert (prepared.format, prepared.extension) == ("HEIF", ".heic")


# -- prepare_image: what is not a usable image ---------------------------------------------


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = (SAMPLES / "landscape_1.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        prepare_image(path)
    message = str(info.value)
    assert message.startswith("truncated JPEG: ") and "\n" not in message


def test_random_bytes_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(random.Random(7).randbytes(5000))
    with pytest.raises(ImageError, match="^not an image$"):
        prepare_image(path)
    assert real_extension(path) is None


def test_empty_file_folder_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    folder = tmp_path / "x.jpg"
    folder.mkdir()
    with pytest.raises(ImageError, match="^empty file$"):
        prepare_image(empty)
    with pytest.raises(ImageError, match="^is a folder$"):
        prepare_image(folder)
    with pytest.raises(ImageError, match="^no such file$"):
        prepare_image(tmp_path / "gone.jpg")
    assert (
        real_extension(empty) is real_extension(folder) is real_extension(tmp_path / "no") is None
    )


def test_decompression_bombs_are_refused_from_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    decoded_any = []
    monkeypatch.setattr(PillowSource, "plan", lambda *a: decoded_any.append(a) or 1)
    for name, fmt in (("wide.png", "PNG"), ("wide.jpg", "JPEG"), ("wide.heic", "HEIF")):
        Image.new("RGB", (150, 100), RED).save(tmp_path / name, fmt)
        with pytest.raises(ImageError) as info:
            prepare_image(tmp_path / name, max_side=50)
        assert str(info.value) == "image too large: 150x100 = 0.0 MP (the limit is 0.0 MP)"
    assert not decoded_any
    Image.new("RGB", (100, 100), RED).save(tmp_path / "square.png")  # at the line: fine
    assert prepare_image(tmp_path / "square.png", max_side=50).width == 50


def test_the_line_is_documented_and_pillows_own_is_never_lower() -> None:
    assert images.MAX_PIXELS == 300_000_000
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= images.MAX_PIXELS
    with pytest.raises(ImageError, match=r"^image too large: 30000x20000 = 600 MP \(the limit"):
        images.check_pixels(30000, 20000)
    images.check_pixels(20000, 10000)  # a 200 MP panorama is a photo


def test_threads_share_nothing() -> None:
    paths = [SAMPLES / f"landscape_{n}.jpg" for n in range(1, 9)] * 3
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: prepare_image(p, max_side=200), paths))
    assert {(r.width, r.height) for r in results} == {(200, 150)}


# -- HEIC: a tile at a time -----------------------------------------------------------------


def marked(size: tuple[int, int]) -> Image.Image:
    """A gradient photo with a red top-left and a blue bottom-right corner: any flip or turn
    of it shows."""
    photo = Image.linear_gradient("L").resize(size).convert("RGB")
    photo.paste(RED, (0, 0, size[0] // 4, size[1] // 4))
    photo.paste(BLUE, (size[0] * 3 // 4, size[1] * 3 // 4, *size))
    return photo


def libheif_reference(path: Path, size: tuple[int, int]) -> Image.Image:
    """What libheif makes of the whole photo (it applies clap, irot and imir itself)."""
    with Image.open(path) as im:
        return im.convert("RGB").resize(size, Image.Resampling.BOX)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_transforms_as_libheif_does(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.heic"
    exif = Image.Exif()
    exif[0x0112] = orientation  # pillow-heif writes it as irot/imir, as phones do
    marked((301, 200)).save(path, exif=exif.tobytes(), quality=90)
    prepared = prepare_image(path, max_side=150)
    im = decoded(prepared)
    sideways = orientation in (5, 6, 7, 8)
    assert (prepared.original_width, prepared.original_height) == (
        (200, 301) if sideways else (301, 200)
    )
    assert im.size == ((100, 150) if sideways else (150, 100))
    assert difference(im, libheif_reference(path, im.size)) < 4


def test_heic_grid_is_decoded_tile_by_tile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    exif = Image.Exif()
    exif[0x0112] = 6
    # 64 px tiles as phones use 512: 5x4 of them, the last column and row only partly used.
    marked((300, 200)).save(path, exif=exif.tobytes(), quality=90, tile_size=64)
    tiles = []
    decode_tile = heif._decode_tile
    monkeypatch.setattr(heif, "_decode_tile", lambda *a: tiles.append(a[-1]) or decode_tile(*a))
    layout = heif.read_layout(path)
    assert (layout.columns, layout.rows, layout.tile_width) == (5, 4, 64)
    prepared = prepare_image(path, max_side=90)
    assert len(tiles) == 20
    assert (prepared.width, prepared.height) == (60, 90)
    assert (prepared.format, prepared.extension) == ("HEIF", ".heic")
    im = decoded(prepared)
    assert difference(im, libheif_reference(path, im.size)) < 4
    assert close(im.getpixel((50, 8)), RED) and close(im.getpixel((8, 80)), BLUE)
    # At its own size too (no reduction at all), and at one that divides nothing.
    assert difference(decoded(prepare_image(path)), libheif_reference(path, (200, 300))) < 4
    im = decoded(prepare_image(path, max_side=77))
    assert difference(im, libheif_reference(path, im.size)) < 6


def test_heic_cost_is_a_band_of_tiles_not_the_photo() -> None:
    layout = heif.Layout(
        8064, 6048, 16, 12, 512, 512, tuple(range(192)), (0, 0, 8064, 6048), (), {}, b""
    )
    cost = layout.cost((1024, 768))
    assert layout.factor((1024, 768)) == 4  # then BOX for the last 1.97x
    assert cost < 8064 * 6048 / 5  # ~8 MP of a 48 MP photo


def test_truncated_and_damaged_heic(tmp_path: Path) -> None:
    path = tmp_path / "cut.heic"
    marked((300, 200)).save(path, quality=90, tile_size=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 500])
    with pytest.raises(ImageError, match="^truncated HEIC: the file ends inside the image data$"):
        prepare_image(path)
    path.write_bytes(data[:200])
    with pytest.raises(ImageError, match="^truncated HEIC: "):
        prepare_image(path)
    start = data.index(b"mdat") + 4
    path.write_bytes(data[:start] + bytes(len(data) - start))  # every tile zeroed
    with pytest.raises(ImageError, match="^corrupt HEIC: "):
        prepare_image(path)


def test_heic_without_pillow_heif_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "IMG_0002.HEIC"
    Image.new("RGB", (64, 48), RED).save(path)
    monkeypatch.setitem(formats._plugins, "pillow_heif", None)
    with pytest.raises(ImageError, match="^HEIC photo: pillow-heif is not installed"):
        prepare_image(path)
    assert real_extension(path) == ".heic"  # still known for what it is


def test_each_decode_takes_its_cost_from_the_budget_and_gives_it_back(tmp_path: Path) -> None:
    budget = PixelBudget(10)  # smaller than any photo: each runs alone, none is refused
    held: list[int] = []
    decode = PillowSource.decode

    def spy(self: PillowSource, size: tuple[int, int]) -> Image.Image:
        held.append(budget.in_use)
        return decode(self, size)

    cut = tmp_path / "cut.jpg"
    cut.write_bytes((SAMPLES / "landscape_1.jpg").read_bytes()[:5000])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PillowSource, "decode", spy)
        assert prepare_image(SAMPLES / "landscape_1.jpg", max_side=300, budget=budget).width == 300
        with pytest.raises(ImageError):
            prepare_image(cut, max_side=300, budget=budget)
    assert held == [300 * 225] * 2  # the 600x450 photo drafted at 1/2
    assert budget.in_use == 0 and budget.running == 0


# -- formats pipe reads, and the ones it says it cannot -------------------------------------


def test_avif_and_jpeg_xl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    formats.register_jxl()  # teaches Pillow to write one
    for name, fmt in (("a.avif", "AVIF"), ("b.jxl", "JXL")):
        marked((300, 200)).save(tmp_path / name, fmt, quality=90)
        prepared = prepare_image(tmp_path / name, max_side=150)
        assert (prepared.format, prepared.extension) == (fmt, "." + name.split(".")[1])
        assert close(decoded(prepared).getpixel((10, 10)), RED, 40)
    monkeypatch.setattr(images.features, "check", lambda feature: False)
    with pytest.raises(ImageError, match="^AVIF not supported by this Pillow"):
        prepare_image(tmp_path / "a.avif")
    monkeypatch.setitem(formats._plugins, "pillow_jxl", None)
    with pytest.raises(ImageError, match="^JPEG XL needs pillow-jxl-plugin"):
        prepare_image(tmp_path / "b.jxl")


def dnl_jpeg(path: Path) -> Path:
    """A JPEG whose frame header says height 0, the height following the scan in a DNL
    marker (as some scanners and fax software write them): libjpeg cannot read these."""
    Image.new("RGB", (64, 48), RED).save(path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    height = data[sof + 5 : sof + 7]
    data[sof + 5 : sof + 7] = b"\x00\x00"
    eoi = data.rindex(b"\xff\xd9")
    data[eoi:eoi] = b"\xff\xdc\x00\x04" + height
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("dnl.jpg", dnl_jpeg, "^JPEG whose height is set by a DNL marker: pipe cannot read these"),
        (
            "layers.psd",
            lambda p: p.write_bytes(b"8BPS\x00\x01" + bytes(40)),
            r"^Photoshop PSD is not supported \(save a JPEG or PNG copy\)$",
        ),
        (
            "IMG_0003.CR3",
            lambda p: p.write_bytes(
                b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + bytes(40)
            ),
            "^Canon CR3 raw photos are not supported",
        ),
        (
            "noise.jpg",
            lambda p: p.write_bytes(random.Random(7).randbytes(5000)),
            "^not an image$",
        ),
        (
            "cut.png",
            lambda p: p.write_bytes(png_bytes()[:-3000]),
            r"^truncated PNG: the file ends early",
        ),
        (
            "cut.webp",
            lambda p: p.write_bytes(png_bytes("WEBP")[:-300]),
            r"^truncated WEBP: the file ends early",
        ),
    ],
)
def test_what_cannot_be_read_says_why(tmp_path: Path, name: str, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        prepare_image(path)
    assert "\n" not in str(info.value)


def png_bytes(fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((200, 150), 60).convert("RGB").save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_libvips_formats_turn_upright_from_exif(tmp_path: Path, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait with red at the top right
    path = tmp_path / f"photo.{fmt.lower()}"
    marked((300, 200)).save(
        path, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {})
    )
    prepared = prepare_image(path, max_side=150)
    assert (prepared.width, prepared.height, prepared.format) == (100, 150, fmt)
    im = decoded(prepared)
    assert close(im.getpixel((95, 5)), RED) and close(im.getpixel((5, 145)), BLUE)


def test_16bit_png_and_float_tiff_keep_their_tones(tmp_path: Path) -> None:
    ramp = Image.linear_gradient("L").resize((64, 256))
    ramp.point(lambda v: v * 257, "I").convert("I;16").save(tmp_path / "deep.png")
    ramp.convert("F").point(lambda v: v / 255).save(tmp_path / "float.tif")
    for name in ("deep.png", "float.tif"):
        out = decoded(prepare_image(tmp_path / name))
        dark, bright = out.getpixel((32, 5))[0], out.getpixel((32, 250))[0]
        assert dark < 30 and bright > 225, name


def test_interlaced_png_costs_all_its_pixels_a_plain_one_a_band(tmp_path: Path) -> None:
    im = Image.new("RGB", (300, 3000), RED)
    im.save(tmp_path / "plain.png")
    vips_source._pyvips().Image.new_from_file(tmp_path / "plain.png").pngsave(
        str(tmp_path / "interlaced.png"),
        interlace=True,  # Pillow writes no interlaced PNG
    )
    plain = vips_source.open_source(tmp_path / "plain.png", "PNG")
    interlaced = vips_source.open_source(tmp_path / "interlaced.png", "PNG")
    shrunk = 100 * 1000  # 1/3 across and down
    assert interlaced.plan((100, 1000)) == shrunk + 300 * 3000
    assert plain.plan((100, 1000)) < shrunk + 300 * 3000 / 4  # a few hundred rows' worth
    assert close(decoded(prepare_image(tmp_path / "interlaced.png")).getpixel((50, 500)), RED)


# -- real_extension ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "extension"),
    [("JPEG", ".jpg"), ("PNG", ".png"), ("GIF", ".gif"), ("WEBP", ".webp"), ("TIFF", ".tif")],
)
def test_real_extension_from_content(tmp_path: Path, fmt: str, extension: str) -> None:
    path = tmp_path / "photo.dat"
    Image.new("RGB", (8, 8)).save(path, fmt)
    assert real_extension(path) == extension
    assert real_extension(str(path)) == extension


def test_real_extension_heif_avif_bmp_and_raw(tmp_path: Path) -> None:
    def ftyp(*brands: bytes) -> bytes:
        body = brands[0] + b"\x00\x00\x00\x00" + b"".join(brands)
        return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00" * 64

    cases = {
        "a.jpg": ftyp(b"heic", b"mif1", b"heic"),
        "b.jpg": ftyp(b"mif1", b"mif1", b"heic"),
        "c.heic": ftyp(b"avif", b"mif1", b"avif"),
        "d.mp4": ftyp(b"isom", b"isom", b"mp41"),
        "e.NEF": b"MM\x00*" + b"\x00" * 60,  # camera raw: TIFF inside, not a .tif
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    Image.new("RGB", (8, 8)).save(tmp_path / "f.jpg", "BMP")
    assert real_extension(tmp_path / "a.jpg") == ".heic"
    assert real_extension(tmp_path / "b.jpg") == ".heic"
    assert real_extension(tmp_path / "c.heic") == ".avif"
    assert real_extension(tmp_path / "d.mp4") is None
    assert real_extension(tmp_path / "e.NEF") == ".nef"
    assert real_extension(tmp_path / "f.jpg") == ".bmp"
    Image.new("RGB", (8, 8)).save(tmp_path / "g.dng", "TIFF")
    assert prepare_image(tmp_path / "g.dng").extension == ".dng"


# -- EXIF and XMP: tests/media/test_exif.py ------------------------------------------------------


def test_whole_corpus_prepares_and_reads() -> None:
    paths = sorted(CORPUS.glob("*/*.jpg"))
    assert len(paths) > 50
    for path in paths:
        prepared = prepare_image(path, max_side=512)
        assert max(prepared.width, prepared.height) <= 512, path
        meta = read_metadata(path)
        assert "\x00" not in meta.camera and meta.camera == meta.camera.strip(), path


def test_a_photo_read_whole_costs_its_pixels_once_unless_it_is_converted(tmp_path: Path) -> None:
    """RGB is held once (a 48 MP AVIF or JPEG XL fits the single-decode limit); a palette
    image is also converted at full size, so it costs twice."""
    Image.new("RGB", (200, 100), RED).save(tmp_path / "rgb.bmp")
    Image.new("RGB", (200, 100), RED).convert("P").save(tmp_path / "palette.gif")
    rgb = pillow_source.open_source(tmp_path / "rgb.bmp", None)
    palette = pillow_source.open_source(tmp_path / "palette.gif", ".gif")
    assert rgb.plan((100, 50)) == 200 * 100
    assert palette.plan((100, 50)) == 2 * 200 * 100
