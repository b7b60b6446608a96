"""Columns onto import fields: the guess, the check, and what becomes of the other columns."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from labeling.formats import read_rows
from labeling.mapping import check_mapping, guess_mapping, map_columns


def test_the_guess_takes_the_most_telling_name_for_each_field():
    assert guess_mapping(["Sentence", "id", "external_id", "Class", "score"]) == {
        "Sentence": "text", "id": "", "external_id": "external_id", "Class": "label", "score": ""}
    assert guess_mapping(["doc-id", "content", "review"]) == {"doc-id": "external_id", "content": "", "review": "text"}


def test_the_check_names_the_field_a_mapping_misses():
    assert [p.field for p in check_mapping({"id": "external_id", "body": ""}, "meta")] == ["text"]
    assert [p.field for p in check_mapping({"a": "text", "b": "text"}, "keep")] == ["unknown_columns", "text"]
    assert [p.field for p in check_mapping({"a": "external_id", "b": "external_id", "c": "text"}, "meta")] == ["external_id"]
    assert check_mapping({"c": "text"}, "meta") == []  # no id column: ids are made from the content
    assert check_mapping({"id": "external_id", "x": "image"}, "drop") == []


def test_other_columns_go_into_meta_are_dropped_or_are_left_for_validation():
    record = {"id": 1, "body": "t", "stars": 5, "meta": {"stars": "kept"}, "agreement": 1.0}
    rename = {"id": "external_id", "body": "text"}
    assert map_columns(record, rename, "meta") == {"external_id": 1, "text": "t", "meta": {"stars": "kept"}, "agreement": 1.0}
    assert map_columns({"id": 1, "text": "t", "x": 2}, {"id": "external_id", "text": ""}, "meta") == {
        "external_id": 1, "meta": {"text": "t", "x": 2}}  # a column left unmapped is not a field, whatever its name
    assert map_columns({"id": 1, "x": 2}, rename, "drop") == {"external_id": 1}
    assert map_columns({"id": 1, "x": 2}, rename, None) == {"external_id": 1, "x": 2}


def test_a_parquet_files_other_columns_join_its_meta():
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": ["1"], "review": ["great"], "stars": [5], "meta": ['{"lang": "en"}']}), buffer)
    buffer.seek(0)
    rows = list(read_rows(buffer, "parquet", rename={"id": "external_id", "review": "text"}, unknown="meta"))
    assert rows[0].record == {"external_id": "1", "text": "great", "meta": {"lang": "en", "stars": 5}}
