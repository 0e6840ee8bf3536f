"""A comment after a statement's ';' is not part of the statement: it came back as "a; -- why" (its ';' kept,
the comment carried on), unlike every other statement of the same text."""

from __future__ import annotations

from service.sqltext import split_sql

DUMP = """CREATE TABLE u (b INT); -- why the table
INSERT INTO u VALUES ('a; -- not a comment'); -- a comment; with a ';'
CREATE TRIGGER t AFTER INSERT ON u BEGIN UPDATE u SET b = 1; END; -- the trigger's note
"""


def test_a_comment_after_a_statement_is_left_out_of_it():
    assert split_sql(DUMP) == ["CREATE TABLE u (b INT)", "INSERT INTO u VALUES ('a; -- not a comment')",
                               "CREATE TRIGGER t AFTER INSERT ON u BEGIN UPDATE u SET b = 1; END"]

