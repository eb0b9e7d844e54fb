"""Chat rendering shared by the mix and the cold-start set: templates and `messages` arrays.

Templates are filled with ``concat`` of literal pieces and columns rather than
``regexp_replace``/``replace``: a reasoning text full of ``$``, ``\\`` and
braces must be inserted verbatim, and ``concat`` behaves the same on both
engines with no escaping rules to get wrong.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

MESSAGE_TYPE = "array<struct<role:string,content:string>>"


def template_pieces(template: str, placeholders: list[str]) -> list[tuple[bool, str]]:
    """Split a template into (is_placeholder, text) pieces, in order."""
    pattern = "(" + "|".join(re.escape(p) for p in sorted(placeholders, key=len, reverse=True)) + ")"
    return [(piece in placeholders, piece) for piece in re.split(pattern, template) if piece]


def render_template(template: str, values: dict[str, Column]) -> Column:
    """The template with each placeholder (a key of ``values``) replaced by its column; null counts as ''."""
    parts = [
        F.coalesce(values[text], F.lit("")) if is_placeholder else F.lit(text)
        for is_placeholder, text in template_pieces(template, list(values))
    ]
    return F.concat(*parts) if parts else F.lit("")


def chars(df: DataFrame, length_column: str, text_column: str) -> Column:
    """A stored length column when upstream wrote it, else the text's length (0 for null)."""
    if length_column in df.columns:
        return F.coalesce(F.col(length_column).cast("long"), F.lit(0).cast("long"))
    return F.coalesce(F.length(text_column).cast("long"), F.lit(0).cast("long"))


def prompt_messages(df: DataFrame) -> Column:
    """The prompt conversation: ingest's ``messages`` (system + user turns), else built from system/prompt."""
    system = F.struct(F.lit("system").alias("role"), F.col("system").cast("string").alias("content"))
    user = F.struct(F.lit("user").alias("role"), F.col("prompt").cast("string").alias("content"))
    built = F.when(F.col("system").isNotNull() & (F.length("system") > 0), F.array(system, user)).otherwise(
        F.array(user)
    )
    if "messages" not in df.columns:
        return built.cast(MESSAGE_TYPE)
    given = F.col("messages").cast(MESSAGE_TYPE)
    return F.when(F.col("messages").isNotNull() & (F.size("messages") > 0), given).otherwise(
        built.cast(MESSAGE_TYPE)
    )


def with_assistant(conversation: Column, content: Column) -> Column:
    """The conversation followed by one assistant turn."""
    assistant = F.struct(F.lit("assistant").alias("role"), content.cast("string").alias("content"))
    return F.concat(conversation, F.array(assistant).cast(MESSAGE_TYPE))
