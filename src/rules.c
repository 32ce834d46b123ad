/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  The rule language (see rules.h and docs/rules.md).
 *
 *	  A condition is a JSON object.  Each key is a column of the row and
 *	  each value says what the column must hold:
 *
 *		a scalar		equality ({"pipeline_id": 2}, {"closed_at": null})
 *		an array		the column (jsonb) contains it, as jsonb @> does
 *		an object of	comparisons, all of which must hold:
 *		 operators		=, <>, <, <=, >, >= (a scalar), in (an array)
 *		another object	nested keys of a jsonb column ({"extra": {"region":
 *						"EMEA"}}), each value again one of these forms
 *
 *	  and the keys "all" and "any" (an array of conditions) and "not" (a
 *	  condition) combine conditions.  All keys of an object must hold.
 *	  Without operators this is exactly to_jsonb(row) @> condition, the
 *	  semantics of SPIFF conditions.
 *
 *	  Compiled, a condition is a tree of all/any/not nodes over leaves; a
 *	  leaf is a column, a path of keys below it, an operator and operands
 *	  decoded once.  Evaluation reads the column from a jsonb object by key
 *	  or from a tuple by attribute number and runs no SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "rules.h"
#include "util.h"

PG_FUNCTION_INFO_V1(sm_rule_matches);
PG_FUNCTION_INFO_V1(sm_rule_validate);
PG_FUNCTION_INFO_V1(sm_rule_matches_row);

typedef enum RuleNodeKind
{
	RN_ALL,
	RN_ANY,
	RN_NOT,
	RN_LEAF
} RuleNodeKind;

typedef enum RuleOp
{
	OP_EQ,						/* scalar equality (containment of a scalar) */
	OP_NE,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_IN,
	OP_CONTAINS,				/* the value contains a jsonb array */
	OP_IS_OBJECT				/* {} below a key: the value is an object */
} RuleOp;

static const struct
{
	const char *name;
	RuleOp		op;
}			rule_ops[] =
{
	{"=", OP_EQ}, {"<>", OP_NE}, {"<", OP_LT}, {"<=", OP_LE},
	{">", OP_GT}, {">=", OP_GE}, {"in", OP_IN}
};

#define RULE_OPS_HINT "Operators are =, <>, <, <=, >, >= (with a scalar) and in (with an array); combine conditions with all, any and not."

/* how a bound column's datum becomes a JSON value */
typedef enum ColKind
{
	CK_MISSING,					/* not a column of the bound descriptor */
	CK_INT,
	CK_NUMERIC,
	CK_FLOAT,
	CK_BOOL,
	CK_JSONB,
	CK_DATETIME,
	CK_TEXT,
	CK_OTHER					/* through the type's output function */
} ColKind;

typedef struct RuleNode
{
	RuleNodeKind kind;
	int			nchildren;
	struct RuleNode **children;
	/* leaves */
	char	   *column;
	int			npath;
	char	  **path;
	RuleOp		op;
	JsonbValue	operand;		/* scalar operand */
	Jsonb	   *container;		/* OP_CONTAINS operand */
	int			nin;
	JsonbValue *in;				/* OP_IN operands */
	/* bound to a tuple descriptor */
	AttrNumber	attnum;
	ColKind		colkind;
	Oid			typid;
	FmgrInfo	outfn;
	bool		int_operand;	/* integer column, integral scalar operand */
	int64		operand_i64;
} RuleNode;

struct SmRule
{
	RuleNode   *root;
	int			nleaves;
	RuleNode  **leaves;
	Oid			relid;
	const char *what;
	MemoryContext cxt;
};

/* ---------------------------------------------------------------------
 * Compiling
 * ---------------------------------------------------------------------
 */

static RuleNode *compile_object(SmRule *rule, JsonbContainer *obj, int depth);

static const char *
rule_table_name(SmRule *rule)
{
	return rule->relid == InvalidOid ? "the row"
		: quote_qualified_identifier(get_namespace_name(get_rel_namespace(rule->relid)),
									 get_rel_name(rule->relid));
}

static RuleNode *
new_node(RuleNodeKind kind)
{
	RuleNode   *n = palloc0(sizeof(RuleNode));

	n->kind = kind;
	n->colkind = CK_MISSING;
	return n;
}

static void
add_child(RuleNode *parent, RuleNode *child)
{
	parent->children = parent->nchildren == 0
		? palloc(sizeof(RuleNode *) * 4)
		: repalloc(parent->children, sizeof(RuleNode *) * (parent->nchildren + 4));
	parent->children[parent->nchildren++] = child;
}

static void
add_leaf(SmRule *rule, RuleNode *parent, RuleNode *leaf)
{
	add_child(parent, leaf);
	rule->leaves = rule->nleaves == 0
		? palloc(sizeof(RuleNode *) * 8)
		: repalloc(rule->leaves, sizeof(RuleNode *) * (rule->nleaves + 8));
	rule->leaves[rule->nleaves++] = leaf;
}

static char *
jbv_cstring(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* a scalar that outlives the condition it was read from */
static JsonbValue
jbv_copy(JsonbValue *v)
{
	JsonbValue	c = *v;

	if (v->type == jbvString)
		c.val.string.val = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		c.val.numeric = DatumGetNumericCopy(NumericGetDatum(v->val.numeric));
	return c;
}

static bool
is_operator(const char *key, RuleOp *op)
{
	for (int i = 0; i < (int) lengthof(rule_ops); i++)
		if (strcmp(key, rule_ops[i].name) == 0)
		{
			if (op)
				*op = rule_ops[i].op;
			return true;
		}
	return false;
}

/* a key of punctuation only that is no operator is a mistyped operator */
static bool
looks_like_operator(const char *key)
{
	if (*key == '\0')
		return false;
	for (const char *p = key; *p; p++)
		if (!strchr("<>=!~", *p))
			return false;
	return true;
}

static const char *
path_name(RuleNode *leaf)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, leaf->column);
	for (int i = 0; i < leaf->npath; i++)
		appendStringInfo(&s, ".%s", leaf->path[i]);
	return s.data;
}

static const char *
jbv_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		default:
			return "a container";
	}
}

/* the column a leaf names, validated against the rule's table */
static Oid
leaf_column_type(SmRule *rule, RuleNode *leaf)
{
	AttrNumber	att;

	if (rule->relid == InvalidOid)
		return InvalidOid;
	att = get_attnum(rule->relid, leaf->column);
	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s names \"%s\", which is not a column of %s",
						rule->what, leaf->column, rule_table_name(rule)),
				 errhint("Name a column of %s; custom fields are matched inside extra, e.g. {\"extra\": {\"%s\": ...}}.",
						 rule_table_name(rule), leaf->column)));
	return getBaseType(get_atttype(rule->relid, att));
}

static bool
type_is_number(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == NUMERICOID ||
		t == FLOAT4OID || t == FLOAT8OID || t == OIDOID;
}

/*
 * A leaf's operand must fit its column: numbers for number columns,
 * booleans for boolean columns, strings for the others; null is always
 * allowed with = and <> and in.  jsonb columns take anything.
 */
static void
check_operand(SmRule *rule, RuleNode *leaf, Oid coltype, JsonbValue *v)
{
	const char *want = NULL;

	if (coltype == InvalidOid || coltype == JSONBOID || leaf->npath > 0)
		return;
	if (v->type == jbvNull)
	{
		if (leaf->op == OP_EQ || leaf->op == OP_NE || leaf->op == OP_IN)
			return;
		want = type_is_number(coltype) ? "a number" : coltype == BOOLOID ? "a boolean" : "a string";
	}
	else if (type_is_number(coltype))
		want = v->type == jbvNumeric ? NULL : "a number";
	else if (coltype == BOOLOID)
	{
		want = v->type == jbvBool ? NULL : "a boolean";
		if (!want && leaf->op != OP_EQ && leaf->op != OP_NE && leaf->op != OP_IN)
			want = "= or <> (booleans are not ordered)";
	}
	else
		want = v->type == jbvString ? NULL : "a string";
	if (want)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s compares column \"%s\" of type %s with %s",
						rule->what, path_name(leaf), format_type_be(coltype), jbv_type_name(v)),
				 errhint("Use %s here.", want)));
}

static void
check_scalar(SmRule *rule, RuleNode *leaf, JsonbValue *v, const char *opname)
{
	if (v->type == jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: operator \"%s\" on \"%s\" needs a scalar, not an array or object",
						rule->what, opname, path_name(leaf)),
				 errhint(RULE_OPS_HINT)));
}

static RuleNode *
leaf_for(RuleNode *proto, RuleOp op)
{
	RuleNode   *leaf = new_node(RN_LEAF);

	leaf->column = proto->column;
	leaf->npath = proto->npath;
	leaf->path = proto->path;
	leaf->op = op;
	return leaf;
}

/*
 * What one key's value asks (value v at column/path of proto), added to
 * parent as leaves.
 */
static void
compile_value(SmRule *rule, RuleNode *parent, RuleNode *proto, Oid coltype, JsonbValue *v)
{
	RuleNode   *leaf;

	if (v->type != jbvBinary)
	{
		leaf = leaf_for(proto, OP_EQ);
		leaf->operand = jbv_copy(v);
		check_operand(rule, leaf, coltype, v);
		add_leaf(rule, parent, leaf);
		return;
	}
	if (JsonContainerIsArray(v->val.binary.data))
	{
		if (coltype != InvalidOid && coltype != JSONBOID && proto->npath == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s gives an array for column \"%s\" of type %s",
							rule->what, proto->column, format_type_be(coltype)),
					 errhint("To match one of several values write {\"%s\": {\"in\": [...]}}.", proto->column)));
		leaf = leaf_for(proto, OP_CONTAINS);
		leaf->container = JsonbValueToJsonb(v);
		add_leaf(rule, parent, leaf);
		return;
	}
	else
	{
		JsonbContainer *obj = v->val.binary.data;
		JsonbIterator *it = JsonbIteratorInit(obj);
		JsonbValue	k,
					val;
		JsonbIteratorToken tok;
		int			nops = 0,
					nkeys = 0;
		char	   *key = NULL;

		/* operators or nested keys? */
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
			if (tok == WJB_KEY)
			{
				key = jbv_cstring(&k);
				nkeys++;
				if (is_operator(key, NULL))
					nops++;
				else if (looks_like_operator(key))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s uses unknown operator \"%s\" on \"%s\"",
									rule->what, key, path_name(proto)),
							 errhint(RULE_OPS_HINT)));
			}
		if (nops > 0 && nops < nkeys)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s mixes operators and keys in the object given for \"%s\"",
							rule->what, path_name(proto)),
					 errhint("An object either holds operators, e.g. {\">\": 100, \"<=\": 500}, or nested keys of a jsonb column.")));
		if (nops == 0 && coltype != InvalidOid && coltype != JSONBOID && proto->npath == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s uses unknown operator \"%s\" on column \"%s\"",
							rule->what, key ? key : "{}", proto->column),
					 errhint(RULE_OPS_HINT " Nested keys are for jsonb columns such as extra.")));
		if (nkeys == 0)
		{
			leaf = leaf_for(proto, OP_IS_OBJECT);
			add_leaf(rule, parent, leaf);
			return;
		}

		it = JsonbIteratorInit(obj);
		while ((tok = JsonbIteratorNext(&it, &val, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				key = jbv_cstring(&val);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;
			if (nops > 0)
			{
				RuleOp		op = OP_EQ;

				is_operator(key, &op);
				leaf = leaf_for(proto, op);
				if (op == OP_IN)
				{
					JsonbIterator *ait;
					JsonbValue	e;

					if (val.type != jbvBinary || !JsonContainerIsArray(val.val.binary.data))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("%s: operator \"in\" on \"%s\" needs an array",
										rule->what, path_name(proto)),
								 errhint("For example {\"%s\": {\"in\": [\"Retail\", \"Healthcare\"]}}.", proto->column)));
					leaf->in = palloc(sizeof(JsonbValue) * (JsonContainerSize(val.val.binary.data) + 1));
					ait = JsonbIteratorInit(val.val.binary.data);
					while ((tok = JsonbIteratorNext(&ait, &e, true)) != WJB_DONE)
						if (tok == WJB_ELEM)
						{
							check_scalar(rule, leaf, &e, "in");
							check_operand(rule, leaf, coltype, &e);
							leaf->in[leaf->nin++] = jbv_copy(&e);
						}
				}
				else
				{
					check_scalar(rule, leaf, &val, key);
					check_operand(rule, leaf, coltype, &val);
					leaf->operand = jbv_copy(&val);
				}
				add_leaf(rule, parent, leaf);
			}
			else
			{
				RuleNode	sub = *proto;

				sub.path = palloc(sizeof(char *) * (proto->npath + 1));
				if (proto->npath > 0)
					memcpy(sub.path, proto->path, sizeof(char *) * proto->npath);
				sub.path[sub.npath++] = key;
				compile_value(rule, parent, &sub, coltype, &val);
			}
		}
	}
}

static RuleNode *
compile_condition_value(SmRule *rule, JsonbValue *v, const char *ctx, int depth)
{
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: \"%s\" needs %s", rule->what, ctx,
						strcmp(ctx, "not") == 0 ? "a condition object" : "an array of condition objects"),
				 errhint("For example {\"any\": [{\"industry\": \"Retail\"}, {\"amount\": {\">\": 100000}}]} or {\"not\": {\"source\": \"cold\"}}.")));
	return compile_object(rule, v->val.binary.data, depth + 1);
}

static RuleNode *
compile_object(SmRule *rule, JsonbContainer *obj, int depth)
{
	RuleNode   *node = new_node(RN_ALL);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	check_stack_depth();
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = jbv_cstring(&v);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "all") == 0 || strcmp(key, "any") == 0)
		{
			RuleNode   *comb = new_node(key[1] == 'l' ? RN_ALL : RN_ANY);
			JsonbIterator *ait;
			JsonbValue	e;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: \"%s\" needs an array of condition objects", rule->what, key),
						 errhint("For example {\"any\": [{\"industry\": \"Retail\"}, {\"amount\": {\">\": 100000}}]}.")));
			ait = JsonbIteratorInit(v.val.binary.data);
			while ((tok = JsonbIteratorNext(&ait, &e, true)) != WJB_DONE)
				if (tok == WJB_ELEM)
					add_child(comb, compile_condition_value(rule, &e, key, depth));
			add_child(node, comb);
		}
		else if (strcmp(key, "not") == 0)
		{
			RuleNode   *neg = new_node(RN_NOT);

			add_child(neg, compile_condition_value(rule, &v, key, depth));
			add_child(node, neg);
		}
		else
		{
			RuleNode	proto;

			memset(&proto, 0, sizeof(proto));
			proto.column = key;
			if (looks_like_operator(key) || is_operator(key, NULL))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s uses operator \"%s\" where a column name belongs", rule->what, key),
						 errhint("Put operators below the column: {\"amount\": {\"%s\": 100000}}.", key)));
			compile_value(rule, node, &proto, leaf_column_type(rule, &proto), &v);
		}
	}
	return node;
}

SmRule *
sm_rule_compile(Jsonb *cond, Oid relid, const char *what)
{
	SmRule	   *rule = palloc0(sizeof(SmRule));

	rule->relid = relid;
	rule->what = what ? what : "condition";
	rule->cxt = CurrentMemoryContext;
	if (!JB_ROOT_IS_OBJECT(cond) || JB_ROOT_IS_SCALAR(cond))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", rule->what),
				 errhint("For example {\"industry\": \"Retail\", \"amount\": {\">\": 100000}}; {} matches every row.")));
	rule->root = compile_object(rule, &cond->root, 0);
	return rule;
}

bool
sm_rule_matches_all(const SmRule *rule)
{
	return rule->root->kind == RN_ALL && rule->root->nchildren == 0;
}

/* ---------------------------------------------------------------------
 * Evaluating
 * ---------------------------------------------------------------------
 */

static int
jbv_string_cmp(JsonbValue *a, JsonbValue *b)
{
	int			r = memcmp(a->val.string.val, b->val.string.val,
						   Min(a->val.string.len, b->val.string.len));

	if (r != 0)
		return r;
	return (a->val.string.len > b->val.string.len) - (a->val.string.len < b->val.string.len);
}

/* equality of two scalars as jsonb containment has it */
static bool
jbv_equal(JsonbValue *a, JsonbValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvString:
			return jbv_string_cmp(a, b) == 0;
		case jbvNumeric:
			return sm_numeric_cmp(a->val.numeric, b->val.numeric) == 0;
		default:
			return false;
	}
}

/* the order of two numbers or two strings; false when they are not */
static bool
jbv_order(JsonbValue *a, JsonbValue *b, int *cmp)
{
	if (a->type != b->type)
		return false;
	if (a->type == jbvNumeric)
		*cmp = sm_numeric_cmp(a->val.numeric, b->val.numeric);
	else if (a->type == jbvString)
		*cmp = jbv_string_cmp(a, b);
	else
		return false;
	return true;
}

/* a jsonb container as a value: scalars unwrapped */
static void
container_value(JsonbContainer *c, JsonbValue *out)
{
	if (!JsonbExtractScalar(c, out))
	{
		out->type = jbvBinary;
		out->val.binary.data = c;
		out->val.binary.len = 0;
	}
}

static bool
leaf_test(const RuleNode *leaf, JsonbValue *v, bool found)
{
	int			cmp;

	if (found && leaf->npath > 0)
	{
		/* descend the nested keys */
		for (int i = 0; i < leaf->npath; i++)
		{
			JsonbValue *next;

			if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
				return false;
			next = getKeyJsonValueFromContainer(v->val.binary.data, leaf->path[i],
												strlen(leaf->path[i]), NULL);
			if (next == NULL)
				return false;
			*v = *next;
		}
	}
	if (!found)
		return false;
	switch (leaf->op)
	{
		case OP_EQ:
			return jbv_equal(v, (JsonbValue *) &leaf->operand);
		case OP_NE:
			return v->type != jbvNull && !jbv_equal(v, (JsonbValue *) &leaf->operand);
		case OP_LT:
			return jbv_order(v, (JsonbValue *) &leaf->operand, &cmp) && cmp < 0;
		case OP_LE:
			return jbv_order(v, (JsonbValue *) &leaf->operand, &cmp) && cmp <= 0;
		case OP_GT:
			return jbv_order(v, (JsonbValue *) &leaf->operand, &cmp) && cmp > 0;
		case OP_GE:
			return jbv_order(v, (JsonbValue *) &leaf->operand, &cmp) && cmp >= 0;
		case OP_IN:
			for (int i = 0; i < leaf->nin; i++)
				if (jbv_equal(v, &leaf->in[i]))
					return true;
			return false;
		case OP_IS_OBJECT:
			return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
		case OP_CONTAINS:
			{
				JsonbIterator *it1,
						   *it2;

				if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
					return false;
				it1 = JsonbIteratorInit(v->val.binary.data);
				it2 = JsonbIteratorInit(&leaf->container->root);
				return JsonbDeepContains(&it1, &it2);
			}
	}
	return false;
}

typedef bool (*LeafEval) (const RuleNode *leaf, const void *row);

static bool
eval_node(const RuleNode *node, LeafEval leaf_eval, const void *row)
{
	switch (node->kind)
	{
		case RN_ALL:
			for (int i = 0; i < node->nchildren; i++)
				if (!eval_node(node->children[i], leaf_eval, row))
					return false;
			return true;
		case RN_ANY:
			for (int i = 0; i < node->nchildren; i++)
				if (eval_node(node->children[i], leaf_eval, row))
					return true;
			return false;
		case RN_NOT:
			return !eval_node(node->children[0], leaf_eval, row);
		case RN_LEAF:
			return leaf_eval(node, row);
	}
	return false;
}

static bool
leaf_eval_jsonb(const RuleNode *leaf, const void *row)
{
	JsonbValue *v = getKeyJsonValueFromContainer((JsonbContainer *) row, leaf->column,
												 strlen(leaf->column), NULL);
	JsonbValue	copy;

	if (v == NULL)
		return false;
	copy = *v;
	return leaf_test(leaf, &copy, true);
}

bool
sm_rule_match_jsonb(const SmRule *rule, Jsonb *row)
{
	if (!JB_ROOT_IS_OBJECT(row) || JB_ROOT_IS_SCALAR(row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row to match must be a JSON object"),
				 errhint("Pass the row as to_jsonb(t).")));
	return eval_node(rule->root, leaf_eval_jsonb, &row->root);
}

void
sm_rule_bind(SmRule *rule, TupleDesc desc)
{
	for (int i = 0; i < rule->nleaves; i++)
	{
		RuleNode   *leaf = rule->leaves[i];
		Oid			t;

		leaf->attnum = InvalidAttrNumber;
		leaf->colkind = CK_MISSING;
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), leaf->column) == 0)
			{
				leaf->attnum = a + 1;
				break;
			}
		}
		if (leaf->attnum == InvalidAttrNumber)
			continue;
		t = getBaseType(TupleDescAttr(desc, leaf->attnum - 1)->atttypid);
		leaf->typid = t;
		switch (t)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
				leaf->colkind = CK_INT;
				leaf->int_operand = false;
				if (leaf->npath == 0 && leaf->operand.type == jbvNumeric &&
					leaf->op >= OP_EQ && leaf->op <= OP_GE)
				{
					/* integral and within int64: its text is all digits */
					char	   *txt = sm_numeric_to_cstring(leaf->operand.val.numeric);
					char	   *end;

					errno = 0;
					leaf->operand_i64 = strtoll(txt, &end, 10);
					leaf->int_operand = errno == 0 && end != txt && *end == '\0';
				}
				break;
			case NUMERICOID:
				leaf->colkind = CK_NUMERIC;
				break;
			case FLOAT4OID:
			case FLOAT8OID:
				leaf->colkind = CK_FLOAT;
				break;
			case BOOLOID:
				leaf->colkind = CK_BOOL;
				break;
			case JSONBOID:
				leaf->colkind = CK_JSONB;
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
			case TIMEOID:
			case TIMETZOID:
				leaf->colkind = CK_DATETIME;
				break;
			case TEXTOID:
			case VARCHAROID:
			case BPCHAROID:
				leaf->colkind = CK_TEXT;
				break;
			default:
				{
					Oid			out;
					bool		isvarlena;

					getTypeOutputInfo(t, &out, &isvarlena);
					fmgr_info_cxt(out, &leaf->outfn, rule->cxt);
					leaf->colkind = CK_OTHER;
				}
		}
	}
}

typedef struct TupleRow
{
	HeapTuple	tuple;
	TupleDesc	desc;
} TupleRow;

static void
text_value(JsonbValue *v, char *s)
{
	v->type = jbvString;
	v->val.string.val = s;
	v->val.string.len = strlen(s);
}

/* a column's datum as to_jsonb would give it, tested */
static bool
leaf_eval_datum(const RuleNode *leaf, Datum d, bool isnull)
{
	JsonbValue	v;

	if (isnull)
	{
		v.type = jbvNull;
		return leaf_test(leaf, &v, true);
	}
	switch (leaf->colkind)
	{
		case CK_INT:
			{
				int64		i = leaf->typid == INT8OID ? DatumGetInt64(d)
					: leaf->typid == INT4OID ? DatumGetInt32(d) : DatumGetInt16(d);

				/* integers against integers without building a numeric */
				if (leaf->int_operand)
				{
					int			cmp = (i > leaf->operand_i64) - (i < leaf->operand_i64);

					switch (leaf->op)
					{
						case OP_EQ:
							return cmp == 0;
						case OP_NE:
							return cmp != 0;
						case OP_LT:
							return cmp < 0;
						case OP_LE:
							return cmp <= 0;
						case OP_GT:
							return cmp > 0;
						case OP_GE:
							return cmp >= 0;
						default:
							break;
					}
				}
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(i);
				break;
			}
		case CK_NUMERIC:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(d);
			break;
		case CK_FLOAT:
			{
				float8		f = leaf->typid == FLOAT4OID ? DatumGetFloat4(d) : DatumGetFloat8(d);

				if (isinf(f) || isnan(f))
					text_value(&v, DatumGetCString(DirectFunctionCall1(float8out, Float8GetDatum(f))));
				else
				{
					v.type = jbvNumeric;
					v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric, Float8GetDatum(f)));
				}
				break;
			}
		case CK_BOOL:
			v.type = jbvBool;
			v.val.boolean = DatumGetBool(d);
			break;
		case CK_JSONB:
			container_value(&DatumGetJsonbP(d)->root, &v);
			break;
		case CK_DATETIME:
			{
				char		buf[MAXDATELEN + 1];

				text_value(&v, pstrdup(JsonEncodeDateTime(buf, d, leaf->typid, NULL)));
				break;
			}
		case CK_TEXT:
			{
				text	   *t = DatumGetTextPP(d);

				v.type = jbvString;
				v.val.string.val = VARDATA_ANY(t);
				v.val.string.len = VARSIZE_ANY_EXHDR(t);
				break;
			}
		default:
			text_value(&v, OutputFunctionCall((FmgrInfo *) &leaf->outfn, d));
			break;
	}
	return leaf_test(leaf, &v, true);
}

static bool
leaf_eval_tuple(const RuleNode *leaf, const void *row)
{
	const TupleRow *tr = row;
	bool		isnull;
	Datum		d;

	if (leaf->colkind == CK_MISSING)
		return false;
	d = heap_getattr(tr->tuple, leaf->attnum, tr->desc, &isnull);
	return leaf_eval_datum(leaf, d, isnull);
}

bool
sm_rule_match_tuple(const SmRule *rule, HeapTuple tuple, TupleDesc desc)
{
	TupleRow	tr = {tuple, desc};

	return eval_node(rule->root, leaf_eval_tuple, &tr);
}

typedef struct ValuesRow
{
	const Datum *values;
	const bool *isnull;
} ValuesRow;

static bool
leaf_eval_values(const RuleNode *leaf, const void *row)
{
	const ValuesRow *vr = row;

	if (leaf->colkind == CK_MISSING)
		return false;
	return leaf_eval_datum(leaf, vr->values[leaf->attnum - 1], vr->isnull[leaf->attnum - 1]);
}

bool
sm_rule_match_values(const SmRule *rule, const Datum *values, const bool *isnull)
{
	ValuesRow	vr = {values, isnull};

	return eval_node(rule->root, leaf_eval_values, &vr);
}

/* ---------------------------------------------------------------------
 * SQL interface
 * ---------------------------------------------------------------------
 */

/* a compiled condition cached in fn_extra while the condition is the same */
typedef struct RuleCache
{
	Jsonb	   *cond;
	SmRule	   *rule;
	Oid			rowtype;		/* bound to this row type (rule_matches_row) */
	int32		rowtypmod;
} RuleCache;

static RuleCache *
rule_cache(FunctionCallInfo fcinfo, Jsonb *cond)
{
	RuleCache  *cache = fcinfo->flinfo->fn_extra;

	if (cache == NULL || VARSIZE(cache->cond) != VARSIZE(cond) ||
		memcmp(cache->cond, cond, VARSIZE(cond)) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		SmRule	   *rule = sm_rule_compile(cond, InvalidOid, "condition");

		if (cache == NULL)
			cache = palloc0(sizeof(RuleCache));
		cache->rule = rule;
		cache->cond = palloc(VARSIZE(cond));
		memcpy(cache->cond, cond, VARSIZE(cond));
		cache->rowtype = InvalidOid;
		fcinfo->flinfo->fn_extra = cache;
		MemoryContextSwitchTo(old);
	}
	return cache;
}

/* salesmgmt.rule_matches(p_condition jsonb, p_row jsonb) RETURNS boolean */
Datum
sm_rule_matches(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	Jsonb	   *row = PG_GETARG_JSONB_P(1);
	RuleCache  *cache = rule_cache(fcinfo, cond);

	PG_RETURN_BOOL(sm_rule_match_jsonb(cache->rule, row));
}

/*
 * salesmgmt.rule_matches_row(p_condition jsonb, p_row record): the same
 * test on a row value without building its JSON (the tuple path).
 */
Datum
sm_rule_matches_row(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(1);
	RuleCache  *cache = rule_cache(fcinfo, cond);
	Oid			rowtype = HeapTupleHeaderGetTypeId(rec);
	int32		rowtypmod = HeapTupleHeaderGetTypMod(rec);
	TupleDesc	desc = lookup_rowtype_tupdesc(rowtype, rowtypmod);
	HeapTupleData tuple;
	bool		result;

	if (cache->rowtype != rowtype || cache->rowtypmod != rowtypmod || rowtype == RECORDOID)
	{
		sm_rule_bind(cache->rule, desc);
		cache->rowtype = rowtype;
		cache->rowtypmod = rowtypmod;
	}
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	result = sm_rule_match_tuple(cache->rule, &tuple, desc);
	ReleaseTupleDesc(desc);
	PG_RETURN_BOOL(result);
}

/* salesmgmt.rule_validate(p_condition jsonb, p_table regclass) RETURNS boolean */
Datum
sm_rule_validate(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond;
	Oid			relid;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("condition and table must not be null"),
				 errhint("Give {} for a condition that matches every row.")));
	cond = PG_GETARG_JSONB_P(0);
	relid = PG_GETARG_OID(1);
	if (get_rel_relkind(relid) == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	sm_rule_compile(cond, relid, "condition");
	PG_RETURN_BOOL(true);
}
