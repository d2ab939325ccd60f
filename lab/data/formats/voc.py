"""Pascal VOC XML (``voc``).

Layout: ``ROOT/JPEGImages/NAME.ext`` and ``ROOT/Annotations/NAME.xml``. Each ``<object>``
has ``<name>``, ``<difficult>``, ``<truncated>`` and a ``<bndbox>`` of ``xmin ymin xmax
ymax``. VOC box corners are 1-based inclusive pixel indices, so the box covers the
continuous span ``[xmin - 1, xmax] x [ymin - 1, ymax]``; the reader and writer convert.
Errors name the XML line of the offending element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.parsers.expat
from pathlib import Path

from lab.data.formats.base import (
    AnnotationFormatError,
    check_in_image,
    find_images,
    load_sidecar,
    make_meta,
    output_name,
    parse_float,
    parse_int,
    write_sidecar,
)
from shared.annotations import AnnotatedImage, Dataset, ObjectAnnotation
from shared.imageio import write_rgb

IMAGE_DIR, ANNOTATION_DIR = "JPEGImages", "Annotations"


def _parse(path: Path) -> tuple[ET.Element, dict[int, int]]:
    """Parse with expat directly so every element keeps its source line (ElementTree's
    own parser does not expose it)."""
    expat = xml.parsers.expat.ParserCreate()
    lines: dict[int, int] = {}
    stack: list[ET.Element] = []
    roots: list[ET.Element] = []

    def start(tag, attrs):
        element = ET.Element(tag, attrs)
        lines[id(element)] = expat.CurrentLineNumber
        (stack[-1].append(element) if stack else roots.append(element))
        stack.append(element)

    def end(tag):
        stack.pop()

    def text(data):
        if stack:
            stack[-1].text = (stack[-1].text or "") + data

    expat.StartElementHandler, expat.EndElementHandler = start, end
    expat.CharacterDataHandler = text
    try:
        expat.Parse(path.read_bytes(), True)
    except xml.parsers.expat.ExpatError as exc:
        raise AnnotationFormatError(path, exc.lineno, f"invalid XML: {exc}") from None
    return roots[0], lines


class _Located:
    """Reads values out of one parsed XML file, naming the file and line on every fault."""

    def __init__(self, path: Path, lines: dict[int, int]):
        self.path, self.lines = path, lines

    def line(self, element: ET.Element) -> int:
        return self.lines.get(id(element), 1)

    def number(self, parent: ET.Element, tag: str, integer: bool = False) -> float:
        el = parent.find(tag)
        if el is None or el.text is None or not el.text.strip():
            raise AnnotationFormatError(self.path, self.line(parent), f"<{tag}> missing")
        parse = parse_int if integer else parse_float
        return parse(el.text.strip(), self.path, self.line(el), f"<{tag}>")


def read(root: Path) -> Dataset:
    sidecar = load_sidecar(root)
    image_dir, ann_dir = root / IMAGE_DIR, root / ANNOTATION_DIR
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"voc: no {ANNOTATION_DIR}/ folder in {root}")
    images = []
    for path in find_images(image_dir):
        rel = path.relative_to(image_dir)
        xml_path = (ann_dir / rel).with_suffix(".xml")
        if not xml_path.exists():
            images.append(AnnotatedImage(make_meta(rel.as_posix(), path, sidecar), [], path=path))
            continue
        tree, lines = _parse(xml_path)
        doc = _Located(xml_path, lines)
        size = tree.find("size")
        if size is None:
            raise AnnotationFormatError(xml_path, doc.line(tree), "<size> missing")
        meta = make_meta(rel.as_posix(), path, sidecar, int(doc.number(size, "width", True)),
                         int(doc.number(size, "height", True)))
        objects = []
        for obj in tree.iter("object"):
            name_el = obj.find("name")
            if name_el is None or not (name_el.text or "").strip():
                raise AnnotationFormatError(xml_path, doc.line(obj), "<object> has no <name>")
            box = obj.find("bndbox")
            if box is None:
                raise AnnotationFormatError(xml_path, doc.line(obj), "<object> has no <bndbox>")
            x0, y0 = doc.number(box, "xmin") - 1, doc.number(box, "ymin") - 1
            x1, y1 = doc.number(box, "xmax"), doc.number(box, "ymax")
            check_in_image(xml_path, doc.line(box), meta, (x0, x1), (y0, y1))
            flags = {}
            for flag in ("difficult", "truncated"):
                flags[flag] = obj.find(flag) is not None and doc.number(obj, flag, True) == 1
            try:
                objects.append(ObjectAnnotation.from_box(name_el.text.strip(), x0, y0, x1, y1,
                                                         **flags))
            except ValueError as exc:
                raise AnnotationFormatError(xml_path, doc.line(box), str(exc)) from None
        images.append(AnnotatedImage(meta, objects, path=path))
    names = sorted({o.class_name for img in images for o in img.objects})
    return Dataset(images, names, root, "voc")


def write(dataset: Dataset, root: Path, image_ext: str = ".jpg", jpeg_quality: int = 95) -> None:
    for img in dataset.images:
        name = output_name(img.image_id, image_ext)
        write_rgb(root / IMAGE_DIR / name, img.load_pixels(), jpeg_quality)
        ann = ET.Element("annotation")
        ET.SubElement(ann, "folder").text = IMAGE_DIR
        ET.SubElement(ann, "filename").text = Path(name).name
        size = ET.SubElement(ann, "size")
        for tag, value in (("width", img.meta.width), ("height", img.meta.height), ("depth", 3)):
            ET.SubElement(size, tag).text = str(value)
        for obj in img.objects:
            el = ET.SubElement(ann, "object")
            ET.SubElement(el, "name").text = obj.class_name
            ET.SubElement(el, "pose").text = "Unspecified"
            ET.SubElement(el, "truncated").text = str(int(obj.truncated))
            ET.SubElement(el, "difficult").text = str(int(obj.difficult))
            box = ET.SubElement(el, "bndbox")
            xmin, ymin, xmax, ymax = obj.box
            for tag, value in (("xmin", xmin + 1), ("ymin", ymin + 1), ("xmax", xmax),
                               ("ymax", ymax)):
                ET.SubElement(box, tag).text = f"{value:.2f}".rstrip("0").rstrip(".")
        ET.indent(ann)
        xml_path = (root / ANNOTATION_DIR / name).with_suffix(".xml")
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(ann).write(xml_path, encoding="utf-8", xml_declaration=True)
    write_sidecar(root, dataset.images, image_ext)
