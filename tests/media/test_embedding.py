"""pipe's fields written into a photo's own XMP and IPTC (pipeline/media/embedding/): each
writable format round-trips with the same decoded pixels and the fields read back by other
readers (Pillow, ElementTree); what the photo held is kept; other formats are refused in
one line, and the photo itself is never touched by exiv2."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from pipeline.media.embedding import EmbedError, embed
from pipeline.media.embedding.iptc import MAX_CAPTION, MAX_KEYWORD
from pipeline.media.embedding.pixels import check_same_pixels
from pipeline.media.xmp.fields import XmpFields
from tests.conftest import CORPUS
from tests.media.second_reader import iptc, iptc_keywords, pixels, xmp_fields

FIELDS = XmpFields(description="A dog on a beach, ☀ at noon", keywords=("dog", "beach", "Sonne"))


def _source() -> Image.Image:
    with Image.open(CORPUS / "gps" / "DSCN0029.jpg") as im:
        return im.resize((160, 120))


def _exif() -> bytes:
    with Image.open(CORPUS / "gps" / "DSCN0029.jpg") as im:
        return im.info["exif"]


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _made(folder: Path, name: str) -> Path:
    """A photo of each kind pipe writes, with EXIF (GPS) and an ICC profile where it fits."""
    path, im = folder / name, _source()
    if name == "photo.jpg":
        shutil.copy(CORPUS / "gps" / "DSCN0029.jpg", path)
    elif name == "photo.png":
        im.save(path, exif=_exif(), icc_profile=SRGB)
    elif name in ("lossless.webp", "lossy.webp"):
        im.save(path, exif=_exif(), icc_profile=SRGB, lossless=name == "lossless.webp")
    elif name == "animated.webp":
        frames = [im, im.rotate(90), im.rotate(180)]
        frames[0].save(path, save_all=True, append_images=frames[1:], lossless=True)
    elif name == "photo.tif":
        im.save(path, exif=_exif(), icc_profile=SRGB)
    elif name == "lzw.tif":
        im.save(path, compression="tiff_lzw", icc_profile=SRGB)
    elif name == "pages.tif":
        im.save(path, save_all=True, append_images=[im.rotate(90).resize((60, 40))])
    elif name == "rgba.png":
        im.convert("RGBA").save(path)
    elif name == "grey16.png":
        im.convert("I").point(lambda v: v * 250).convert("I;16").save(path)  # 16 bits
    return path


FORMATS = [
    "photo.jpg",
    "photo.png",
    "rgba.png",
    "grey16.png",
    "lossless.webp",
    "lossy.webp",
    "animated.webp",
    "photo.tif",
    "lzw.tif",
    "pages.tif",
]


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_round_trips_with_identical_pixels(tmp_path: Path, name: str) -> None:
    photo = _made(tmp_path, name)
    before, pixels_before = photo.read_bytes(), pixels(photo)
    with Image.open(photo) as im:
        exif_before, icc_before = dict(im.getexif()), im.info.get("icc_profile")

    done = embed(str(photo), FIELDS)

    assert done.temp is not None and Path(done.temp).parent == tmp_path
    assert Path(done.temp).name.startswith(".pipe-") and done.temp.endswith(".tmp")
    assert photo.read_bytes() == before  # exiv2 wrote only the copy
    assert done.original.size == len(before)
    written = Path(done.temp)
    assert pixels(written) == pixels_before
    assert xmp_fields(written) == (FIELDS.description, list(FIELDS.keywords or ()))
    with Image.open(written) as im:
        exif = dict(im.getexif())
        assert im.info.get("icc_profile") == icc_before
    if name.endswith(".jpg"):  # TIFF's own tags are its EXIF: compared by the writer
        assert exif == exif_before
    assert os.stat(written).st_mtime_ns == os.stat(photo).st_mtime_ns
    assert os.stat(written).st_mode == os.stat(photo).st_mode


@pytest.mark.parametrize("name", ["photo.jpg", "photo.tif"])
def test_jpeg_and_tiff_carry_iptc_in_utf8(tmp_path: Path, name: str) -> None:
    photo = _made(tmp_path, name)
    long = XmpFields(description="é" * 1500, keywords=("dog", "ü" * 40, "x" * 63 + "é"))
    done = embed(str(photo), long)
    assert done.temp is not None
    found = iptc(done.temp)
    assert found[(1, 90)] == b"\x1b%G"
    caption = found[(2, 120)]
    assert isinstance(caption, bytes) and len(caption) <= MAX_CAPTION
    assert caption.decode() == "é" * (MAX_CAPTION // 2)  # cut between characters
    keywords = iptc_keywords(done.temp)
    assert keywords == ["dog", "ü" * 32, "x" * 63]
    assert all(len(k.encode()) <= MAX_KEYWORD for k in keywords)
    # XMP has no such limits: the whole text is there.
    assert xmp_fields(done.temp) == (long.description, list(long.keywords or ()))


def test_what_the_photo_held_is_kept_and_keywords_merge(tmp_path: Path) -> None:
    """Photoshop's test file: XMP keywords and IPTC, an ICC profile, EXIF."""
    photo = tmp_path / "BlueSquare.jpg"
    shutil.copy(CORPUS / "xmp" / "BlueSquare.jpg", photo)
    own = ["XMP", "Blue Square", "test file", "Photoshop", ".jpg"]
    assert xmp_fields(photo)[1] == own and iptc_keywords(photo) == own
    with Image.open(photo) as im:
        exif_before, icc_before = dict(im.getexif()), im.info["icc_profile"]
    name_before = iptc(photo)[(2, 5)]

    done = embed(str(photo), XmpFields(description="blue", keywords=("square", "dog")),
                 XmpFields(keywords=("Photoshop",)))  # fmt: skip

    assert done.temp is not None
    merged = ["XMP", "Blue Square", "test file", ".jpg", "square", "dog"]
    assert xmp_fields(done.temp) == ("blue", merged)
    assert iptc_keywords(done.temp) == merged
    assert iptc(done.temp)[(2, 5)] == name_before  # its object name, untouched
    with Image.open(done.temp) as im:
        assert dict(im.getexif()) == exif_before
        assert im.info["icc_profile"] == icc_before


def test_a_photo_that_already_holds_the_fields_is_not_written(tmp_path: Path) -> None:
    photo = _made(tmp_path, "photo.jpg")
    first = embed(str(photo), FIELDS)
    assert first.temp is not None
    os.replace(first.temp, photo)
    again = embed(str(photo), FIELDS)
    assert again.temp is None
    assert os.listdir(tmp_path) == ["photo.jpg"]  # no temporary file left


def _heic(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("photo.heic", "exiv2 cannot write HEIC safely (its BMFF support is read-only)"),
        ("photo.gif", "exiv2 cannot write metadata into GIF"),
        ("photo.bmp", "BMP holds no XMP or IPTC"),
        ("photo.nef", "pipe does not rewrite camera raw files"),
        ("notes.txt", "not an image"),
    ],
)
def test_other_formats_are_refused_in_one_line(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name
    if name.endswith(".heic"):
        _heic(path)
    elif name.endswith(".txt"):
        path.write_text("just words\n")
    else:
        _source().save(path, format={"gif": "GIF", "bmp": "BMP", "nef": "TIFF"}[name[-3:]])
    before = path.read_bytes()
    with pytest.raises(EmbedError) as refused:
        embed(str(path), FIELDS)
    message = str(refused.value)
    assert reason in message and "\n" not in message
    if name != "notes.txt":
        assert message.endswith("; use --write xmp")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [name]


def test_a_broken_xmp_packet_is_refused_not_replaced(tmp_path: Path) -> None:
    """exiv2 would read a broken packet as empty and write pipe's fields alone over it."""
    photo = tmp_path / "photo.jpg"
    _source().save(photo, xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF broken")
    with pytest.raises(EmbedError, match="its XMP: not well-formed XML"):
        embed(str(photo), FIELDS)
    assert os.listdir(tmp_path) == ["photo.jpg"]


def test_a_packet_that_would_change_exiv2_is_refused_before_exiv2_reads_it(
    tmp_path: Path,
) -> None:
    """A property in the xml namespace makes exiv2 bind `xml` to a wrong URI for the rest of
    the process (found by fuzzing): refused before exiv2 sees it, and the next photo is
    written as well as ever."""
    odd = tmp_path / "odd.jpg"
    _source().save(
        odd,
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        b' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
        b' rdf:about="" xml:odd="x"/></rdf:RDF></x:xmpmeta>',
    )
    with pytest.raises(EmbedError, match="xml:odd"):
        embed(str(odd), FIELDS)
    fine = tmp_path / "fine.jpg"
    _source().save(fine)
    done = embed(str(fine), FIELDS)
    assert done.temp is not None
    os.replace(done.temp, fine)
    assert xmp_fields(fine)[0] == FIELDS.description


def test_latin1_iptc_of_an_older_tool_becomes_utf8(tmp_path: Path) -> None:
    import exiv2

    photo = _made(tmp_path, "photo.jpg")
    image = exiv2.ImageFactory.open(str(photo))
    image.readMetadata()
    value = exiv2.StringValue()
    value.read("Caf\xe9 am Meer".encode("latin-1"))  # noqa: UP012 - the bytes are the point
    datum = exiv2.Iptcdatum(exiv2.IptcKey("Iptc.Application2.City"))
    datum.setValue(value)
    image.iptcData().add(datum)
    image.writeMetadata()

    done = embed(str(photo), FIELDS)
    assert done.temp is not None
    assert iptc(done.temp)[(2, 90)] == "Café am Meer".encode()


def test_different_pixels_are_caught(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    _source().save(a)
    changed = _source()
    changed.putpixel((80, 60), (0, 0, 0))
    changed.save(b)
    with pytest.raises(EmbedError, match="pixels differ"):
        check_same_pixels(str(a), str(b), pages=False)
    _source().resize((10, 10)).save(b)
    with pytest.raises(EmbedError, match="differ in size"):
        check_same_pixels(str(a), str(b), pages=False)
    check_same_pixels(str(a), str(a), pages=False)


def test_copies_a_killed_run_left_are_removed_not_a_live_ones(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pipeline.media.embedding import write

    photo = _made(tmp_path, "photo.jpg")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f".pipe-embed-{gone.stdout.strip()}-0123456789abcdef.tmp"
    live = tmp_path / f".pipe-embed-{os.getppid()}-0123456789abcdef.tmp"
    other = tmp_path / ".pipe-0123456789abcdef.tmp"  # not a copy of this kind: not ours
    for leftover in (dead, live, other):
        leftover.write_bytes(b"half a photo")
    write._swept.discard(str(tmp_path))

    done = embed(str(photo), FIELDS)

    assert done.temp is not None and Path(done.temp).name.startswith(f".pipe-embed-{os.getpid()}-")
    assert not dead.exists() and live.exists() and other.exists()


def test_the_table_agrees_with_what_exiv2_says_it_writes() -> None:
    """If a libexiv2 update changes what it can write, this says which row to revisit."""
    import exiv2

    from pipeline.media.embedding import REFUSED, WRITABLE

    read_write, types = exiv2.AccessMode.amReadWrite, exiv2.ImageType
    by_ext = {".jpg": types.jpeg, ".tif": types.tiff, ".png": types.png, ".webp": types.webp}
    for ext, kind in WRITABLE.items():
        mode = exiv2.ImageFactory.checkMode
        assert mode(by_ext[ext], exiv2.MetadataId.mdXmp) == read_write, ext
        if kind.iptc:
            assert mode(by_ext[ext], exiv2.MetadataId.mdIptc) == read_write, ext
    refused = {".heic": types.bmff, ".avif": types.bmff, ".gif": types.gif, ".bmp": types.bmp}
    for ext, image_type in refused.items():
        assert ext in REFUSED
        mode = exiv2.ImageFactory.checkMode(image_type, exiv2.MetadataId.mdXmp)
        assert mode in (exiv2.AccessMode.amNone, exiv2.AccessMode.amRead), ext


def test_a_cameras_multi_picture_jpeg_keeps_its_preview(tmp_path: Path) -> None:
    """MPO: the preview after the primary image is addressed from the MP index, whose
    offsets a rewrite ahead of it must not break."""
    from tests.fakes.photos import LARGE_THUMBNAIL_FULL_HD, save_with_frames

    primary, preview = _source(), _source().resize((80, 60))
    photo = save_with_frames(tmp_path / "camera.jpg", primary, [(preview, LARGE_THUMBNAIL_FULL_HD)])
    frames_before = pixels(photo)

    done = embed(str(photo), FIELDS)

    assert done.temp is not None
    with Image.open(done.temp) as im:
        assert im.format == "MPO" and im.n_frames == 2
    assert pixels(done.temp) == frames_before  # both pictures, decoded


def test_a_lost_preview_is_caught(tmp_path: Path) -> None:
    from tests.fakes.photos import LARGE_THUMBNAIL_FULL_HD, save_with_frames

    photo = save_with_frames(
        tmp_path / "camera.jpg", _source(), [(_source().resize((80, 60)), LARGE_THUMBNAIL_FULL_HD)]
    )
    data = photo.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: data.rfind(b"\xff\xd8\xff")])  # the photo itself, not its preview
    with pytest.raises(EmbedError, match="pictures"):
        check_same_pixels(str(photo), str(cut), pages=False)
