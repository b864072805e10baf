"""Which SQL is ``read`` (docs/contract.md#submission, docs/security.md "SQL read steps").

A ``READ ONLY`` transaction stops writes to tables, but not functions with effects outside
them: ``SELECT pg_terminate_backend(pid)``, ``pg_cancel_backend``, ``dblink_exec``,
``pg_advisory_lock``, ``pg_reload_conf``, ``lo_export``, ``set_config`` all run there. So a
statement is read only when PostgreSQL's own parser (libpg_query, through ``pglast``) finds
exactly one ``SELECT``/``VALUES``/``TABLE``/``SHOW`` statement — no data-modifying ``WITH``,
no ``SELECT INTO``, no ``FOR UPDATE`` — that calls only functions of
:data:`READ_ONLY_FUNCTIONS`, unqualified or in ``pg_catalog``. An allow-list, not a
deny-list: a function nobody listed (an extension's, a database's own, a future release's)
makes the statement ``modify``, which at worst asks for an approval too many; a deny-list
would let every function nobody thought of run unapproved.

With ``params``, psycopg2 pastes each value into the text as a quoted literal where the
query has ``%s``/``%(name)s``, whether or not that is inside a literal, a quoted name or a
comment — where the value's own text would become SQL. So each placeholder is parsed as a
parameter ``$n`` and must come out as exactly one parameter node: one inside a literal,
name or comment (or glued to a word, ``E%s``) makes the statement ``modify``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pglast.parser import ParseError, parse_sql_json

# Built-in functions without effects beyond computing their result (PostgreSQL 12-18).
# The SQL-standard forms (EXTRACT, SUBSTRING ... FROM, TRIM, AT TIME ZONE, ...) are calls of
# pg_catalog functions to the parser and are listed by those names.
READ_ONLY_FUNCTIONS: frozenset[str] = frozenset(
    """
    count sum avg min max array_agg string_agg bool_and bool_or every bit_and bit_or bit_xor
    json_agg jsonb_agg json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance
    var_pop var_samp percentile_cont percentile_disc mode corr covar_pop covar_samp regr_avgx
    regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy range_agg
    range_intersect_agg any_value
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    abs ceil ceiling floor round trunc sign sqrt cbrt exp ln log log10 power pow mod div pi
    degrees radians sin cos tan asin acos atan atan2 gcd lcm width_bucket scale factorial random
    length char_length character_length octet_length bit_length lower upper initcap btrim ltrim
    rtrim lpad rpad left right substr substring replace reverse repeat split_part strpos
    position concat concat_ws format md5 sha224 sha256 sha384 sha512 encode decode to_hex ascii
    chr quote_ident quote_literal quote_nullable regexp_match regexp_matches regexp_replace
    regexp_split_to_array regexp_split_to_table regexp_count regexp_instr regexp_like
    regexp_substr starts_with translate overlay string_to_array string_to_table array_to_string
    to_char to_number to_date to_timestamp normalize is_normalized similar_to_escape
    pg_collation_for
    now clock_timestamp statement_timestamp transaction_timestamp timeofday date_trunc date_part
    extract age make_date make_time make_timestamp make_timestamptz make_interval justify_days
    justify_hours justify_interval isfinite date_bin timezone overlaps
    json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
    row_to_json array_to_json json_array_length jsonb_array_length json_each jsonb_each
    json_each_text jsonb_each_text json_object_keys jsonb_object_keys json_extract_path
    jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_typeof jsonb_typeof
    jsonb_pretty json_array_elements jsonb_array_elements json_array_elements_text
    jsonb_array_elements_text jsonb_set jsonb_insert jsonb_strip_nulls json_strip_nulls
    jsonb_path_query jsonb_path_exists jsonb_path_match jsonb_path_query_array
    jsonb_path_query_first json_object jsonb_object json_to_record jsonb_to_record
    json_to_recordset jsonb_to_recordset
    array_length array_lower array_upper array_ndims array_dims cardinality array_append
    array_prepend array_cat array_remove array_replace array_position array_positions unnest
    array_fill generate_subscripts trim_array generate_series num_nulls num_nonnulls
    host masklen network broadcast family abbrev gen_random_uuid
    current_database current_schema current_schemas version system_user pg_backend_pid
    inet_server_addr inet_server_port inet_client_addr inet_client_port pg_postmaster_start_time
    pg_conf_load_time pg_is_in_recovery pg_last_wal_receive_lsn pg_last_wal_replay_lsn
    pg_last_xact_replay_timestamp pg_current_wal_lsn pg_wal_lsn_diff pg_database_size
    pg_relation_size pg_total_relation_size pg_table_size pg_indexes_size pg_size_pretty
    pg_size_bytes pg_column_size pg_tablespace_size pg_blocking_pids has_table_privilege
    has_database_privilege has_schema_privilege has_column_privilege has_function_privilege
    has_sequence_privilege pg_has_role pg_get_viewdef pg_get_indexdef pg_get_constraintdef
    pg_get_functiondef pg_get_triggerdef pg_get_expr pg_get_userbyid pg_get_serial_sequence
    pg_typeof format_type obj_description col_description shobj_description pg_table_is_visible
    to_regclass to_regtype to_regproc
    """.split()  # noqa: SIM905 - grouped by kind, one word each
)

# psycopg2's placeholders: %s, %(name)s, and %% for a literal percent sign.
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?s|%%")
_PARAMETER = re.compile(r"\$(\d+)")
_QUALIFIERS = {(), ("pg_catalog",)}
_READ_STATEMENTS = {"SelectStmt", "VariableShowStmt"}


def _nodes(tree: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of the parse tree's JSON, walked without recursion (a statement may
    nest thousands deep). Node types are the capitalised keys (``FuncCall``, ``SelectStmt``);
    a field typed as one node type is not wrapped (a UNION's ``larg``), so the checks below
    look at field names too."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                stack.append(value)


def _refused(key: str, value: Any) -> bool:
    """Does this part of the tree keep a statement from being read?"""
    if key.endswith("Stmt") and key[:1].isupper():
        return key not in _READ_STATEMENTS  # INSERT/UPDATE/DELETE/MERGE in a WITH, or any other
    if key in ("intoClause", "lockingClause"):
        return True  # SELECT INTO creates a table; FOR UPDATE/SHARE locks rows
    if key == "funcname":  # a FuncCall, wrapped or not
        parts = [part.get("String", {}).get("sval") for part in value if isinstance(part, dict)]
        if not parts or len(parts) != len(value) or None in parts:
            return True
        *qualifiers, name = parts
        return tuple(qualifiers) not in _QUALIFIERS or name not in READ_ONLY_FUNCTIONS
    return False


def sql_is_read(query: str, params: Any = None) -> bool:
    """Is ``query`` (run with ``params``, as the sql runner runs it) one read-only statement?"""
    expected: list[int] = []
    if params:
        first = 1 + max((int(n) for n in _PARAMETER.findall(query)), default=0)

        def parameter(match: re.Match[str]) -> str:
            if match.group() == "%%":
                return "%"
            expected.append(first + len(expected))
            return f"${expected[-1]}"

        query = _PLACEHOLDER.sub(parameter, query)
    try:
        # The JSON form: libpg_query stops too deep a tree with an error ("stack depth limit
        # exceeded") where building pglast's Python nodes would overflow the C stack.
        tree = json.loads(parse_sql_json(query))
    except (ParseError, RecursionError):
        return False
    if len(tree.get("stmts") or []) != 1:
        return False
    parameters = []
    for key, value in _nodes(tree):
        if _refused(key, value):
            return False
        if key == "ParamRef":
            parameters.append(int(value.get("number", 0)))
    return sorted(parameters) == expected
