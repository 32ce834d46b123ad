-- rules.sql: the one rule language (docs/rules.md), shared by assignment
-- rules, lead scoring, approval and follow-up rules.  The language lives in
-- src/rules.c; these are its SQL entry points.  New in 0.2.0: the same file
-- is in the install script and, whole, in the upgrade from 0.1.0.

CREATE FUNCTION salesmgmt.rule_matches(p_condition jsonb, p_row jsonb)
RETURNS boolean
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rule_matches';
COMMENT ON FUNCTION salesmgmt.rule_matches(jsonb, jsonb) IS 'True when the row (a JSON object, e.g. to_jsonb(t)) matches the condition in the rule language of docs/rules.md: equality and containment as to_jsonb(row) @> condition, comparisons (=, <>, <, <=, >, >=, in), nested keys of jsonb columns, all/any/not. A malformed condition raises 22023.';

CREATE FUNCTION salesmgmt.rule_validate(p_condition jsonb, p_table regclass)
RETURNS boolean
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rule_validate';
COMMENT ON FUNCTION salesmgmt.rule_validate(jsonb, regclass) IS 'Checks a condition against the columns of a table: true when valid, else 22023 naming the unknown column, the unknown operator or the operand of the wrong type (22004 for null arguments). Usable in CHECK constraints of rule tables.';

CREATE FUNCTION salesmgmt.rule_matches_row(p_condition jsonb, p_row record)
RETURNS boolean
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_rule_matches_row';
COMMENT ON FUNCTION salesmgmt.rule_matches_row(jsonb, record) IS 'rule_matches on a row value (e.g. salesmgmt.rule_matches_row(c, d) for a deal d) without building its JSON: the compiled condition reads the columns by attribute number. Same result as rule_matches(c, to_jsonb(row)).';

-- the language is for everyone: it reads no data
GRANT EXECUTE ON FUNCTION salesmgmt.rule_matches(jsonb, jsonb), salesmgmt.rule_matches_row(jsonb, record),
                          salesmgmt.rule_validate(jsonb, regclass)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

SELECT salesmgmt._apply_default_security();
