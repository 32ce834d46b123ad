/*-------------------------------------------------------------------------
 *
 * rules.h
 *	  The one rule language of salesmgmt (docs/rules.md): jsonb conditions
 *	  over a row's columns, used by assignment rules, lead scoring, approval
 *	  and follow-up rules.  Backwards compatible with SPIFF conditions
 *	  (to_jsonb(row) @> condition) and extended with comparisons, "in",
 *	  nested keys of jsonb columns and all/any/not.
 *
 *	  A condition is compiled once (sm_rule_compile) and then evaluated
 *	  without SQL against a jsonb object (sm_rule_match_jsonb) or a heap
 *	  tuple (sm_rule_bind once per tuple descriptor, then
 *	  sm_rule_match_tuple).  Compiling against a table validates it: an
 *	  unknown column, an unknown operator or an operand of the wrong type is
 *	  refused with 22023.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_RULES_H
#define SALESMGMT_RULES_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/jsonb.h"

typedef struct SmRule SmRule;

/*
 * Compile a condition in the current memory context.  relid names the
 * table whose rows the rule tests (InvalidOid: no validation, any keys);
 * what names the rule in error messages ("assignment rule condition").
 */
extern SmRule *sm_rule_compile(Jsonb *cond, Oid relid, const char *what);

/* true when the condition is {} (matches every row) */
extern bool sm_rule_matches_all(const SmRule *rule);

/* evaluate against a jsonb object (a row as to_jsonb gives it) */
extern bool sm_rule_match_jsonb(const SmRule *rule, Jsonb *row);

/*
 * Resolve the rule's columns in a tuple descriptor (once per descriptor;
 * columns the descriptor lacks never match), then evaluate tuples.
 */
extern void sm_rule_bind(SmRule *rule, TupleDesc desc);
extern bool sm_rule_match_tuple(const SmRule *rule, HeapTuple tuple, TupleDesc desc);

/*
 * The same on a tuple already deformed (heap_deform_tuple with the
 * descriptor the rule was bound to): a row tested by several rules is
 * deformed once.
 */
extern bool sm_rule_match_values(const SmRule *rule, const Datum *values, const bool *isnull);

#endif							/* SALESMGMT_RULES_H */
