"""Markdown tables, the shape every report (compare, regress, wiring gaps) is written in."""

from esper.registry.render import markdown_table


def test_a_markdown_table_has_a_header_a_rule_and_one_line_per_row() -> None:
    assert markdown_table(["metric", "value"], [("accuracy", 97.5), ("loss", None)]) == [
        "| metric | value |", "|---|---|", "| accuracy | 97.5 |", "| loss | None |"]


def test_a_pipe_inside_a_cell_cannot_split_the_row() -> None:
    (_, _, row) = markdown_table(["reason"], [("xfail: a|b known gap",)])
    assert row == "| xfail: a\\|b known gap |"


def test_a_line_break_inside_a_cell_cannot_end_the_row() -> None:
    # a regress failure message or a YAML block description can span lines
    (_, _, row) = markdown_table(["reason"], [("worse by 8.2\nbaseline of seed 21",)])
    assert row == "| worse by 8.2<br>baseline of seed 21 |"
