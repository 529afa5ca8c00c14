"""Photos with what the hint fields read: GPS (the corpus's Arezzo photos, or the same one
in samples/), and captions and keywords put in with exiv2 as a photo manager would."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT

CORPUS_GPS = Path("/work/shared/corpus/photos/gps")
SAMPLES = ROOT / "samples" / "photos"
# Where every GPS photo of the corpus was taken (checked by hand: 43.467 N, 11.885 E is the
# old town of Arezzo), as GeoNames names it.
AREZZO = "Arezzo, Tuscany, Italy"


def gps_photos() -> list[Path]:
    """The corpus's GPS photos, or the one of them the repository ships."""
    found = sorted(CORPUS_GPS.glob("*.jpg")) if CORPUS_GPS.is_dir() else []
    return found or [SAMPLES / "DSCN0010.jpg"]


def copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def embed(
    path: Path, *, xmp: dict[str, str] | None = None, iptc: dict[str, list[str]] | None = None
) -> None:
    """Write XMP properties (`Xmp.dc.description` = text, `Xmp.dc.subject` = "a, b") and IPTC
    datasets into the photo itself."""
    import exiv2

    image = exiv2.ImageFactory.open(str(path))
    image.readMetadata()
    data = image.xmpData()
    for key, value in (xmp or {}).items():
        if key == "Xmp.dc.subject":
            bag = exiv2.XmpArrayValue(exiv2.TypeId.xmpBag)
            for word in value.split(", "):
                bag.read(word)
            data.add(exiv2.XmpKey(key), bag)
        else:
            data[key] = value
    iptc_data = image.iptcData()
    for key, values in (iptc or {}).items():
        for value in values:
            datum = exiv2.Iptcdatum(exiv2.IptcKey(key))
            datum.setValue(value)
            iptc_data.add(datum)
    image.writeMetadata()
