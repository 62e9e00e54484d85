"""JSON pages -> Arrow: every key kept, temporal columns typed, types stable across pages."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from sources.common.arrow import TIMESTAMP, PageConverter

UTC = dt.UTC


def test_every_key_of_every_row_becomes_a_column_and_temporals_are_typed():
    page = [
        {
            "id": "a",
            "updated_at": "2024-01-01T00:00:00.123Z",
            "knock_date": "2024-01-01",
            "tags": [],
        },
        {
            "id": "b",
            "updated_at": "2024-01-02T00:00:00Z",
            "late": 1,
            "tags": ["x"],
            "att": [{"k": 1}],
        },
    ]
    table = PageConverter("t")(page)
    assert set(table.column_names) == {"id", "updated_at", "knock_date", "tags", "late", "att"}
    assert table.schema.field("updated_at").type == TIMESTAMP
    assert table.schema.field("knock_date").type == pa.date32()
    assert table.column("updated_at")[0].as_py() == dt.datetime(
        2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC
    )
    assert table.column("tags").to_pylist() == [[], ["x"]]
    assert table.column("late").to_pylist() == [None, 1]


def test_types_stay_stable_across_pages():
    convert = PageConverter("t")
    first = convert([{"id": "a", "n": None, "x": 1, "note": "a"}])
    second = convert([{"id": "b", "n": "text", "x": 2.5, "note": 3}])
    third = convert([{"id": "c", "n": None, "x": 4, "note": None}])
    assert first.schema.field("x").type == pa.int64()
    # 2.5 cannot be a bigint: it goes to a variant column, like dlt's own normalizer does
    assert second.column("x").to_pylist() == [None] and second.column(
        "x__v_double"
    ).to_pylist() == [2.5]
    assert second.column("note").to_pylist() == ["3"]  # a number in a text column: as text
    assert second.schema.field("n").type == pa.string()
    assert third.schema.field("n").type == pa.string()  # null page cast to the known type
    assert third.schema.field("x").type == pa.int64()


def test_known_types_come_from_the_dlt_schema():
    known = {
        "x": {"data_type": "double"},
        "when_at": {"data_type": "timestamp"},
        "j": {"data_type": "json"},
    }
    table = PageConverter("t", known=lambda: known)(
        [
            {"x": 1, "when_at": "not a time", "j": [1, 2]},
            {"x": 2, "when_at": "2024-01-01T00:00:00Z", "j": None},
        ]
    )
    assert table.schema.field("x").type == pa.float64()
    assert table.column("when_at").to_pylist() == [None, dt.datetime(2024, 1, 1, tzinfo=UTC)]
    assert table.column("when_at__v_text").to_pylist() == ["not a time", None]
    assert table.column("j").to_pylist() == [[1, 2], None]


def test_mixed_scalar_types_in_one_page_are_kept_as_text():
    table = PageConverter("t")([{"v": 1}, {"v": "one"}, {"v": None}])
    assert table.column("v").to_pylist() == ["1", "one", None]


def test_objects_and_scalars_in_one_page_each_keep_their_kind():
    """A number column whose page also has objects (a shape the vendor leaves open): the
    numbers stay numbers, the objects go to the JSON variant, as they would on a page of
    their own; the column's first value decides for a new column."""
    rows = [{"v": 1.5}, {"v": {"annual": 2}}, {"v": None}, {"v": "3.25"}]
    table = PageConverter("t", known=lambda: {"v": {"data_type": "double"}})(rows)
    assert table.column("v").to_pylist() == [1.5, None, None, 3.25]
    assert table.column("v__v_json").to_pylist() == [None, {"annual": 2}, None, None]

    table = PageConverter("t")([{"v": 1}, {"v": {"a": 1}}, {"v": "one"}])
    assert table.column("v").to_pylist() == ["1", None, "one"]
    assert table.column("v__v_json").to_pylist() == [None, {"a": 1}, None]

    table = PageConverter("t")([{"v": [1, 2]}, {"v": 7}])  # nested first: the column is JSON
    assert table.column("v").to_pylist() == [[1, 2], None]
    assert table.column("v__v_bigint").to_pylist() == [None, 7]


def test_numeric_text_that_fits_stays_in_a_number_column():
    known = {"x": {"data_type": "double"}, "n": {"data_type": "bigint"}}
    table = PageConverter("t", known=lambda: known)(
        [{"x": "12.50", "n": "7"}, {"x": "n/a", "n": "7.5"}, {"x": None, "n": None}]
    )
    assert table.column("x").to_pylist() == [12.5, None, None]
    assert table.column("x__v_text").to_pylist() == [None, "n/a", None]
    assert table.column("n").to_pylist() == [7, None, None]
    assert table.column("n__v_text").to_pylist() == [None, "7.5", None]


def test_dropped_columns():
    table = PageConverter("t", drop=["secret"])([{"id": 1, "secret": "s"}])
    assert table.column_names == ["id"]


def test_always_columns_exist_typed_before_any_value():
    table = PageConverter("t", always=["deleted_at"])([{"id": 1}])
    assert table.schema.field("deleted_at").type == TIMESTAMP
    assert table.column("deleted_at").to_pylist() == [None]


def test_timestamps_arrow_cannot_parse_are_parsed_the_slow_way():
    table = PageConverter("t")(
        [
            {"updated_at": "2024-01-01T00:00:00"},  # naive: UTC
            {"updated_at": "2024-01-01T02:00:00.123456789+02:00"},  # nanoseconds, offset
            {"updated_at": "2024-01-01"},  # a date
        ]
    )
    assert table.schema.field("updated_at").type == TIMESTAMP
    assert table.column("updated_at").to_pylist() == [
        dt.datetime(2024, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
        dt.datetime(2024, 1, 1, tzinfo=UTC),
    ]
    # text that is no time at all stays text in a new column
    assert (
        PageConverter("t")([{"made_at": "yesterday"}]).schema.field("made_at").type == pa.string()
    )
