/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *	  The pipeline configuration cache and the rules shared by the
 *	  pipeline triggers (pipeline.c), the SQL interface (pipeline_api.c)
 *	  and the sales process (process.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_PIPELINE_H
#define SALESMGMT_PIPELINE_H

#include "postgres.h"

#include "access/htup.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/hsearch.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

typedef enum SmOutcome
{
	SM_OUTCOME_OPEN,
	SM_OUTCOME_WON,
	SM_OUTCOME_LOST
} SmOutcome;

typedef enum SmPolicy
{
	SM_POLICY_FREE,
	SM_POLICY_FORWARD,
	SM_POLICY_EXPLICIT
} SmPolicy;

struct SmPipeline;

typedef struct SmStage
{
	int64		stage_id;		/* hash key: must be first */
	struct SmPipeline *pipeline;
	char	   *name;
	int32		position;
	SmOutcome	outcome;
	Datum		probability;	/* numeric(5,4) */
	Datum		category;		/* text */
	/* stage gate: deal columns (attnum > 0) or keys of deal.extra (0) */
	int			nrequired;
	char	  **required;
	AttrNumber *required_attnum;
	Oid			required_relid; /* deal relation required_attnum is for */
	/* entry_roles; -1 when null (anyone may enter) */
	int			nroles;
	char	  **roles;
	/* explicit transitions out of this stage (to_stage_id) */
	int			nnext;
	int64	   *next;
	/* sales process (process.c): task templates and approval rules */
	int			ntemplates;
	int			nrequired_templates;
	struct SmApprovalRule *rules;	/* list, NULL when none */
} SmStage;

typedef struct SmPipeline
{
	int64		pipeline_id;	/* hash key: must be first */
	char	   *name;
	SmPolicy	policy;
	int			nstages;
	SmStage   **stages;			/* in order of position */
} SmPipeline;

/*
 * The cache: pointers into it stay valid until the next call of
 * sm_config_current(), so callers do not keep them across anything that
 * may run another deal trigger.
 */
extern void sm_config_current(void);
extern SmStage *sm_find_stage(int64 stage_id);
extern SmPipeline *sm_find_pipeline(int64 pipeline_id);
extern HTAB *sm_pipelines(void);
extern int	sm_copy_string_array(Datum arr, Oid elemtype, char ***out);
extern Oid	sm_relation_owner(Oid relid);

/* statement-level work over transition tables (history, stage tasks) */
typedef struct SmColumnDef
{
	const char *name;
	Oid			type;
} SmColumnDef;

extern TupleDesc sm_make_tupdesc(int ncols, const SmColumnDef *cols);
extern void sm_spi_register_tuplestore(const char *name, TupleDesc desc,
									   Tuplestorestate *ts);

/* rules */
extern bool sm_move_allowed(const SmStage *from, const SmStage *to);
extern bool sm_role_may_enter(const SmStage *stage);
extern char *sm_stage_list(const SmPipeline *p);

/* Is a move from one stage to another a step forward (or to won)? */
static inline bool
sm_move_is_forward(const SmStage *from, const SmStage *to)
{
	return to->outcome == SM_OUTCOME_WON ||
		(to->outcome == SM_OUTCOME_OPEN && from->outcome == SM_OUTCOME_OPEN &&
		 to->position > from->position);
}

/* process.c: stage tasks and approvals, hooked into the pipeline triggers */
typedef struct SmProcessBatch SmProcessBatch;

extern bool sm_process_relcache(Oid relid);
extern void sm_process_load(HTAB *stages, MemoryContext cxt);
extern void sm_process_check_row(int64 deal_id, const SmStage *from, const SmStage *to,
								 HeapTuple oldtup, HeapTuple newtup, Relation rel);
extern SmProcessBatch *sm_process_begin(void);
extern void sm_process_row(SmProcessBatch *batch, TupleTableSlot *oldslot,
						   TupleTableSlot *newslot, const SmStage *from,
						   const SmStage *to);
extern void sm_process_finish(SmProcessBatch *batch);
extern int64 sm_process_open_required(int64 deal_id, int64 stage_id);

#endif							/* SALESMGMT_PIPELINE_H */
