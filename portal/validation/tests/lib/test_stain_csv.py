"""Parsing stain-result CSVs: header, value spellings, duplicates, per-row errors."""
from __future__ import annotations

from portal.validation.lib.stain_csv import StainRow, parse_stain_csv


def test_it_reads_rows_in_any_column_order_with_spelled_out_values():
    parsed = parse_stain_csv("PNA,Cell ID,PRM1,note\npositive,abc,neg,x\n,def,N/A,\n")
    assert parsed.errors == []
    assert parsed.rows == [StainRow(line=2, cell="abc", prm1="neg", pna="pos"),
                           StainRow(line=3, cell="def", prm1="na", pna=None)]


def test_it_reads_semicolons_and_a_byte_order_mark():
    parsed = parse_stain_csv("\ufeffcell;prm1;pna\r\nabc;+;-\r\n")
    assert parsed.rows == [StainRow(line=2, cell="abc", prm1="pos", pna="neg")]


def test_each_bad_row_gets_its_own_error_with_its_line():
    parsed = parse_stain_csv("cell,prm1,pna\nabc,pos,neg\nabc,neg,neg\n,pos,pos\nxyz,maybe,pos\n\n")
    assert [(e["line"], e["code"]) for e in parsed.errors] == [(3, "duplicate"), (4, "missing_cell"),
                                                                (5, "bad_value")]
    assert "'maybe'" in parsed.errors[2]["message"]
    assert [r.cell for r in parsed.rows] == ["abc"]


def test_it_refuses_a_file_without_the_columns():
    assert parse_stain_csv("id,result\nabc,pos\n").errors[0]["code"] == "header"
    assert parse_stain_csv("").errors[0]["code"] == "empty"
