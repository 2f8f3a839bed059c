"""Markdown tables, the shape every report (compare, regress, wiring gaps) is written in."""

from esper.registry.render import markdown_table


def test_a_markdown_table_has_a_header_a_rule_and_one_line_per_row() -> None:
    assert markdown_table(["metric", "value"], [("accuracy", 97.5), ("loss", None)]) == [
        "| metric | value |", "|---|---|", "| accuracy | 97.5 |", "| loss | None |"]


def test_a_pipe_inside_a_cell_cannot_split_the_row() -> None:
    (_, _, row) = markdown_table(["reason"], [("xfail: a|b known gap",)])
    assert row == "| xfail: a\\|b known gap |"
