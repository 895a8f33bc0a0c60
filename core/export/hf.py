"""Hugging Face datasets: Parquet files with the image bytes embedded, a `ClassLabel` `label`
(-1 for unlabeled images) and the provenance columns, plus a README whose `configs` block tells
`datasets.load_dataset(folder)` which file is which split.

Rows are buffered into row groups of bounded size, so memory does not grow with the project.
Needs pyarrow (installed with `datasets`), imported only when this format is used."""

from __future__ import annotations

import json
from typing import Any

from core.errors import ImageError, InvalidInput
from core.export.escaping import markdown_text
from core.export.rows import ExportMeta, Rows, provenance

ROW_GROUP_ROWS = 256
ROW_GROUP_BYTES = 64 << 20
HF_SPLIT = {"train": "train", "val": "validation", "test": "test"}
STRING_COLUMNS = ("path", "sha256", "source", "annotator", "model_id", "model_version", "timestamp", "agreement")


def hf_features(classes: tuple[str, ...]) -> dict[str, Any]:
    """The `datasets.Features` of the files, in their serialised form (kept in the Parquet schema)."""
    features: dict[str, Any] = {"image": {"_type": "Image"}, "label": {"names": list(classes), "_type": "ClassLabel"},
                                "image_id": {"dtype": "int64", "_type": "Value"}}
    for name in STRING_COLUMNS:
        features[name] = {"dtype": "string", "_type": "Value"}
    features["confidence"] = {"dtype": "float64", "_type": "Value"}
    return features


def _schema(pa, classes: tuple[str, ...]):  # type: ignore[no-untyped-def]
    fields = [pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
              pa.field("label", pa.int64()), pa.field("image_id", pa.int64())]
    fields += [pa.field(name, pa.string()) for name in STRING_COLUMNS]
    fields.append(pa.field("confidence", pa.float64()))
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features(classes)}})}
    return pa.schema(fields, metadata=metadata)


def _pyarrow():  # type: ignore[no-untyped-def]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InvalidInput("--format hf: needs pyarrow (pip install pyarrow, or pip install datasets)") from exc
    return pa, pq


class _SplitFile:
    def __init__(self, pa, pq, path, schema) -> None:  # type: ignore[no-untyped-def]
        self.pa, self.schema = pa, schema
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self.rows: list[dict[str, Any]] = []
        self.bytes = 0

    def add(self, data: dict[str, Any]) -> None:
        self.rows.append(data)
        self.bytes += len(data["image"]["bytes"])
        if len(self.rows) >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows, self.bytes = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _row(item, label_index: dict[str, int]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    record = item.record
    try:
        with open(record.file_path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageError(record.file_path, f"cannot read the image for the hf export: {exc.strerror}") from exc
    name = record.path.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    return {"image": {"bytes": data, "path": name}, "label": label_index.get(record.label or "", -1),
            "image_id": record.image_id, "path": record.path, "sha256": record.sha256 or None,
            **provenance(record)}


def write_hf(target, rows: Rows, meta: ExportMeta) -> None:  # type: ignore[no-untyped-def]
    pa, pq = _pyarrow()
    schema = _schema(pa, meta.classes)
    label_index = {name: k for k, name in enumerate(meta.classes)}
    splits = [HF_SPLIT[s] for s in meta.split_names] or ["train"]
    files = {split: f"data/{split}-00000-of-00001.parquet" for split in splits}
    writers = {split: _SplitFile(pa, pq, target.path(rel), schema) for split, rel in files.items()}
    try:
        for item in rows:
            writers[HF_SPLIT[item.split] if item.split else "train"].add(_row(item, label_index))
    finally:
        for writer in writers.values():
            writer.close()
    target.register(list(files.values()))
    with target.open_text("README.md") as handle:
        handle.write(_card(meta, files))


def _card(meta: ExportMeta, files: dict[str, str]) -> str:
    entries = "\n".join(f"  - split: {split}\n    path: {rel}" for split, rel in files.items())
    return (f"---\nconfigs:\n- config_name: default\n  data_files:\n{entries}\n---\n\n"
            f"# {markdown_text(meta.project)}\n\nExported by clipmark. `label` is a ClassLabel "
            f"({len(meta.classes)} classes, "
            "-1 = unlabeled); `source`, `confidence`, `annotator`, `model_id`, `model_version` and `timestamp` "
            "say where each label came from.\n")

