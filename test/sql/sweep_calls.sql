-- sweep_calls.sql: the hostile calls of the bad-input sweep
-- (test/t/050_security_input_sweep.pl, scripts/fuzz).
--
-- Every SQL-callable function and procedure of the extension, found from
-- pg_depend, is called once with every argument NULL, and once per
-- argument and hostile value of the argument's type with the other
-- arguments at a plausible value.  One row per call: (n, func, stmt),
-- stmt being a statement that runs the call (PERFORM, or CALL).
WITH val(typ, plausible, hostile) AS (VALUES
    ('int2',        '1',    ARRAY['0', '-1', '32767', '-32768']),
    ('int4',        '1',    ARRAY['0', '-1', '2147483647', '-2147483648']),
    ('int8',        '1',    ARRAY['0', '-1', '9223372036854775807', '-9223372036854775808']),
    ('numeric',     '1',    ARRAY['0', '-1', '1e100', '-1e100', '''NaN''', '''Infinity''', '0.000000000000000000001']),
    ('float8',      '1',    ARRAY['0', '-1', '''NaN''', '''Infinity''', '''-Infinity''', '1e308']),
    ('float4',      '1',    ARRAY['0', '-1', '''NaN''', '''Infinity''']),
    ('bool',        'true', ARRAY['false']),
    ('text',        '''x''', ARRAY['''''', ''' ''', 'repeat(''x'', 100000)', '''%s%n%x''',
                                   E'''x''''; DROP TABLE salesmgmt.deal; --''', '''Ünïcødé 销售''',
                                   '''http://127.0.0.1:1/''', E'''a\\b''', 'chr(1)']),
    ('varchar',     '''x''', ARRAY['''''', 'repeat(''x'', 100000)', E'''x''''; --''']),
    ('name',        '''x''', ARRAY['''''', '''salesmgmt_admin''', '''postgres''', 'repeat(''n'', 63)']),
    ('bpchar',      '''USD''', ARRAY['''''', '''usd''', '''XYZ''', '''U$D''']),
    ('date',        '''2026-01-01''', ARRAY['''infinity''', '''-infinity''', '''4713-01-01 BC''', '''5874897-12-31''', '''1970-01-01''']),
    ('timestamptz', '''2026-01-01 00:00+00''', ARRAY['''infinity''', '''-infinity''', '''4713-01-01 00:00+00 BC''', '''294276-12-31 00:00+00''']),
    ('timestamp',   '''2026-01-01 00:00''', ARRAY['''infinity''', '''-infinity''', '''294276-12-31 00:00''']),
    ('interval',    '''1 day''', ARRAY['''0''', '''-1 day''', '''178000000 years''', '''-178000000 years''']),
    ('jsonb',       '''{}''',  ARRAY['''[]''', '''null''', '''"x"''', '''{"a": {"b": [1, null, "c"]}}''',
                                     'repeat(''['', 5000)::text || repeat('']'', 5000)',
                                     '''[{"name": null, "probability": -1}, {}]''',
                                     '''{"stages": [{"name": "", "probability": 2}]}''']),
    ('json',        '''{}''',  ARRAY['''[]''', '''null''', '''"x"''']),
    ('uuid',        '''00000000-0000-0000-0000-000000000001''', ARRAY['''00000000-0000-0000-0000-000000000000''', '''ffffffff-ffff-ffff-ffff-ffffffffffff''']),
    ('_text',       '''{x}''', ARRAY['''{}''', '''{NULL}''', '''{""}''', '''{{a,b},{c,d}}''', 'array_fill(''x''::text, ARRAY[10000])']),
    ('_name',       '''{x}''', ARRAY['''{}''', '''{NULL}''', '''{salesmgmt_admin}''']),
    ('_int8',       '''{1}''', ARRAY['''{}''', '''{NULL}''', '''{-1,0,9223372036854775807}''', 'array_fill(1::int8, ARRAY[10000])']),
    ('_int4',       '''{1}''', ARRAY['''{}''', '''{NULL}''', '''{-1,0,2147483647}''']),
    ('_numeric',    '''{1}''', ARRAY['''{}''', '''{NULL}''', '''{-1,NaN,1e100}''']),
    ('regclass',    '''salesmgmt.deal''', ARRAY['''pg_catalog.pg_authid''', '''salesmgmt.rep''', '0']),
    ('regrole',     '''salesmgmt_rep''', ARRAY['''postgres''', '0'])
),
fn AS (
    SELECT p.oid, p.oid::regprocedure::text AS func, p.prokind, p.proretset,
           p.oid::regproc::text AS fname,
           coalesce(p.proargtypes::oid[], '{}') AS argtypes
      FROM pg_depend d
      JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'salesmgmt'
      JOIN pg_proc p ON p.oid = d.objid
     WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
       AND d.deptype = 'e' AND p.prokind IN ('f', 'p')
       -- an argument of type internal cannot be made from SQL at all
       AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]))
),
arg AS (
    SELECT fn.oid, a.pos, a.typ,
           t.typname,
           -- a cast to "character" would be char(1) and cut the value
           CASE WHEN t.typname = 'bpchar' THEN 'bpchar' ELSE format_type(a.typ, NULL) END AS typsql,
           coalesce(v.plausible, 'NULL') AS plausible, coalesce(v.hostile, '{}') AS hostile
      FROM fn, unnest(fn.argtypes) WITH ORDINALITY AS a(typ, pos)
      JOIN pg_type t ON t.oid = a.typ
      LEFT JOIN val v ON v.typ = t.typname
),
variant AS (
    -- all NULL
    SELECT fn.oid, 0 AS pos, NULL::text AS value
      FROM fn
    UNION ALL
    -- one hostile value at a time
    SELECT arg.oid, arg.pos, h FROM arg, unnest(arg.hostile) AS h
    UNION ALL
    -- a NULL in one place, plausible elsewhere
    SELECT arg.oid, arg.pos, 'NULL' FROM arg
),
call AS (
    SELECT fn.func, fn.prokind, fn.proretset, fn.fname, variant.pos, variant.value,
           (SELECT string_agg('(' || CASE
                                      WHEN variant.pos = 0 THEN 'NULL'
                                      WHEN arg.pos = variant.pos THEN variant.value
                                      ELSE arg.plausible
                                    END || ')::' || arg.typsql, ', ' ORDER BY arg.pos)
              FROM arg WHERE arg.oid = fn.oid) AS args
      FROM fn JOIN variant ON variant.oid = fn.oid
)
SELECT row_number() OVER (ORDER BY func, pos, value) AS n, func,
       CASE WHEN prokind = 'p' THEN format('CALL %s(%s)', fname, coalesce(args, ''))
            WHEN proretset THEN format('PERFORM count(*) FROM (SELECT %s(%s) LIMIT 1000) s', fname, coalesce(args, ''))
            ELSE format('PERFORM %s(%s)', fname, coalesce(args, ''))
       END AS stmt
  FROM call
 ORDER BY 1;
