"""Read import files (JSONL, CSV, Parquet) as a stream of rows, one at a time.

Each row comes with its 1-based physical line (for Parquet, its 1-based row number), so every
problem can be reported where it is. Nothing here holds the whole file in memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from typing import IO, Any, Iterator

from labeling.errors import InvalidInput, Problem
from labeling.mapping import map_columns
from labeling.tasks import CSV_SEPARATOR

FORMATS = ("jsonl", "csv", "parquet")
# Parquet is compressed: what it holds is bounded by its decompressed size (from its metadata), and
# read in batches sized by bytes, so memory stays flat however well the file compresses.
PARQUET_MAX_EXPANDED_BYTES = 16 * 1024**3
PARQUET_MAX_ROW_BYTES = 8 * 1024**2  # text of up to a million characters, with room for meta
PARQUET_BATCH_BYTES = 16 * 1024**2
PARQUET_BATCH_ROWS = 5000
PEEK_MAX_LINES = 1000  # a preview reads this far for a first JSON object, no further
JSON_COLUMNS = ("features", "meta")  # JSON-encoded strings inside a CSV
ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape decodes it
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # in no text's column name (tab, newline and CR aside)
csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class RawRow:
    line: int
    record: dict[str, Any] | None
    problem: Problem | None = None


def format_for_filename(filename: str) -> str | None:
    lowered = filename.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".parquet", "parquet")):
        if lowered.endswith(ext):
            return fmt
    return None


def read_rows(stream: IO[bytes], fmt: str, *, rename: dict[str, str] | None = None,
              unknown: str | None = None) -> Iterator[RawRow]:
    """Rows of a file; ``rename`` maps the file's column names to the import fields
    (``{"id": "external_id", "review": "text"}``), for files that name them otherwise, and
    ``unknown`` says what becomes of the other columns (labeling/mapping.py; a CSV's go into
    ``meta`` unless ``"drop"``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid ones are {', '.join(FORMATS)}")
    if fmt == "csv":
        return _read_csv(stream, rename or {}, drop_unknown=unknown == "drop")
    if fmt == "parquet":
        return _read_parquet(stream, rename or {}, unknown)
    rows = _read_jsonl(stream)
    return mapped_rows(rows, rename or {}, unknown) if rename or unknown else rows


def mapped_rows(rows: Iterator[RawRow], rename: dict[str, str], unknown: str | None) -> Iterator[RawRow]:
    """``rows`` through labeling/mapping.py's ``map_columns``."""
    for row in rows:
        if row.record is not None:
            row = RawRow(row.line, map_columns(row.record, rename, unknown), row.problem)
        yield row


def peek_columns(stream: IO[bytes], fmt: str, *, rows: int = 5) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and the first few raw rows of a file, for a preview before importing;
    InvalidInput naming ``file`` (and the line) when there is nothing to map."""
    if fmt == "csv":
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.DictReader(text)
        sample = [dict(r) for _, r in zip(range(rows), reader)]
        columns = list(reader.fieldnames or [])
        # A header of bytes that are not UTF-8 text (a binary file named .csv): no column to map.
        if any("\ufffd" in c or CONTROL.search(c) for c in columns):
            raise InvalidInput.one("line 1: not a readable CSV header (bytes that are not UTF-8 text: save the "
                                   "file as UTF-8, or check that it is a CSV file)", field="file")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(stream)
        except pa.ArrowInvalid:  # the library's words name magic bytes and footers
            raise InvalidInput.one("not a Parquet file (no Parquet footer at its end)", field="file") from None
        first = next(parquet.iter_batches(batch_size=rows), None)
        columns, sample = parquet.schema_arrow.names, (first.to_pylist() if first is not None else [])
    else:
        return _peek_jsonl(stream, rows)
    if not columns:
        raise InvalidInput.one("the file is empty", field="file")
    if not sample:
        raise InvalidInput.one("the file has no rows" + (" below its header" if fmt == "csv" else ""), field="file")
    return columns, sample


def _peek_jsonl(stream: IO[bytes], rows: int) -> tuple[list[str], list[dict[str, Any]]]:
    """A JSONL file's first objects; lines that are not one are left to the import to report,
    unless no object comes within ``PEEK_MAX_LINES`` lines (then the first such line is named)."""
    sample: list[dict[str, Any]] = []
    columns: list[str] = []
    first_bad = None
    for line_no, raw in enumerate(stream, start=1):
        if len(sample) >= rows or (not sample and line_no > PEEK_MAX_LINES):
            break
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if isinstance(record, dict):
            sample.append(record)
            columns += [k for k in record if k not in columns]
        elif first_bad is None:
            first_bad = line_no
    if first_bad is not None and not sample:
        raise InvalidInput.one(f"line {first_bad} is not a JSON object; a JSONL file holds one per line",
                               field="file", line=first_bad)
    if not sample:
        raise InvalidInput.one("the file is empty", field="file")
    if not columns:
        raise InvalidInput.one("the file's objects have no fields", field="file")
    return columns, sample


def _read_jsonl(stream: IO[bytes]) -> Iterator[RawRow]:
    seen_any = False
    for line_no, raw in enumerate(stream, start=1):
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRow(line_no, None, Problem(f"not UTF-8 text (byte {exc.start + 1})", line=line_no))
            continue
        if not text.strip():
            continue
        seen_any = True
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(line_no, None, Problem(f"not valid JSON: {exc.msg} (column {exc.colno})", line=line_no))
            continue
        if not isinstance(record, dict):
            yield RawRow(line_no, None, Problem("each line must be a JSON object", line=line_no))
            continue
        yield RawRow(line_no, record)
    if not seen_any:
        yield RawRow(1, None, Problem("the file is empty", line=1))


def _read_csv(stream: IO[bytes], rename: dict[str, str], *, drop_unknown: bool = False) -> Iterator[RawRow]:
    # Bytes that are not UTF-8 are decoded as lone surrogates and reported on the row that holds
    # them (a strict decoder fails on the whole 8 KB chunk, so always "at line 1" in a small file).
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)  # an unterminated quote is an error, not a swallowed row
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield RawRow(1, None, Problem(f"not valid CSV: {exc}", line=1))
        return
    if not header:
        yield RawRow(1, None, Problem("the file is empty", line=1))
        return
    if (bad := _undecodable(header)) is not None:
        yield RawRow(1, None, Problem(f"not UTF-8 text ({bad})", line=1))
        return
    columns = [h.strip() for h in header]
    fields = [rename.get(c, c) for c in columns]
    if not {"text", "image", "features"} & set(fields):  # one problem on the header, not one per row
        yield RawRow(1, None, Problem("no text, image or features column (the columns are "
                                      f"{', '.join(columns)[:200]})", field="text", line=1))
        return
    while True:
        start_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRow(start_line, None, Problem(f"not valid CSV: {exc}", line=start_line))
            return
        if not values:
            continue
        if (bad := _undecodable(values)) is not None:
            yield RawRow(start_line, None, Problem(f"not UTF-8 text ({bad})", line=start_line))
            continue
        if len(values) != len(fields):
            yield RawRow(start_line, None, Problem(
                f"expected {len(fields)} fields as in the header, found {len(values)}", line=start_line
            ))
            continue
        yield _csv_record(start_line, columns, fields, values, drop_unknown)


def _undecodable(values: list[str]) -> str | None:
    """Where ``values`` (decoded with ``surrogateescape``) hold a byte that is not UTF-8: "byte
    0xE9 in column 3", or None."""
    for column, value in enumerate(values, start=1):
        if found := ESCAPED_BYTE.search(value):
            return f"byte 0x{ord(found.group()) - 0xDC00:02X} in column {column}"
    return None


def labels_of_cell(value: str) -> list[str]:
    """A multi-label CSV cell as its labels: joined by ``|`` (``CSV_SEPARATOR``), ``[]`` for none."""
    return [] if value.strip() == "[]" else [v.strip() for v in value.split(CSV_SEPARATOR) if v.strip()]


def _csv_record(line: int, columns: list[str], fields: list[str], values: list[str], drop_unknown: bool) -> RawRow:
    record: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for column, field, value in zip(columns, fields, values):
        if field in JSON_COLUMNS:
            if value == "":
                continue
            try:
                record[field] = json.loads(value)
            except json.JSONDecodeError:
                return RawRow(line, None, Problem("not valid JSON", field=field, line=line))
        elif field == "labels":  # a set of labels joined by "|"; "[]" for none of them
            if value != "":
                record[field] = labels_of_cell(value)
        elif field in ("external_id", "text", "image", "label"):
            if value != "" or field == "external_id":  # an empty id cell is an error, not a made-up id
                record[field] = value
        else:  # a column no field takes, under its own name (a "" field is one left unmapped)
            extra[column] = value
    if extra and not drop_unknown:
        meta = record.setdefault("meta", {})
        if isinstance(meta, dict):
            meta.update(extra)
    return RawRow(line, record)


def _read_parquet(stream: IO[bytes], rename: dict[str, str], unknown: str | None) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        yield RawRow(1, None, Problem(f"not a Parquet file: {exc}", line=1))
        return
    if parquet.metadata.num_rows == 0:
        yield RawRow(1, None, Problem("the file is empty", line=1))
        return
    if (problem := _expansion_problem(parquet.metadata)) is not None:
        yield RawRow(1, None, problem)
        return
    try:
        yield from _parquet_records(parquet, rename, unknown)
    finally:
        pa.default_memory_pool().release_unused()  # arrow's allocator keeps freed memory otherwise


def _parquet_records(parquet: Any, rename: dict[str, str], unknown: str | None) -> Iterator[RawRow]:
    row_no = 0
    for batch in parquet.iter_batches(batch_size=_batch_rows(parquet.metadata)):
        for record in batch.to_pylist():
            row_no += 1
            record = {k: v for k, v in record.items() if v is not None}
            # meta is parsed before the mapping, which puts the other columns into it
            meta_column = next((c for c in record if rename.get(c, c) == "meta"), None)
            if meta_column is not None and isinstance(record[meta_column], str):
                try:
                    record[meta_column] = json.loads(record[meta_column])
                except json.JSONDecodeError:
                    yield RawRow(row_no, None, Problem("not valid JSON", field="meta", line=row_no))
                    continue
            yield RawRow(row_no, map_columns(record, rename, unknown))


def _expansion_problem(metadata: Any) -> Problem | None:
    """Refuse a file that decompresses to more than it may (a few KB of zstd can hold gigabytes)."""
    expanded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if expanded > PARQUET_MAX_EXPANDED_BYTES:
        return Problem(f"decompresses to {expanded:,} bytes, more than the {PARQUET_MAX_EXPANDED_BYTES:,} allowed", line=1)
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        if group.num_rows and group.total_byte_size / group.num_rows > PARQUET_MAX_ROW_BYTES:
            return Problem(f"rows of row group {i} decompress to {group.total_byte_size // group.num_rows:,} bytes "
                           f"each on average, more than the {PARQUET_MAX_ROW_BYTES:,} a row may hold", line=1)
    return None


def _batch_rows(metadata: Any) -> int:
    """Rows per batch so that a batch, decompressed, stays near ``PARQUET_BATCH_BYTES``."""
    widest = max((metadata.row_group(i).total_byte_size / max(1, metadata.row_group(i).num_rows)
                  for i in range(metadata.num_row_groups)), default=1.0)
    return int(max(1, min(PARQUET_BATCH_ROWS, PARQUET_BATCH_BYTES // max(1.0, widest))))
