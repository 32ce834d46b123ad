/*-------------------------------------------------------------------------
 *
 * lead.h
 *	  Shared declarations of the leads concern: routing (lead_assign.c),
 *	  rule scoring (lead_score.c) and the learned score (lead_model.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALESMGMT_LEAD_H
#define SALESMGMT_LEAD_H

#include "postgres.h"

/* what assignment rules route */
typedef enum SmEntity
{
	SM_ENTITY_LEAD,
	SM_ENTITY_ACCOUNT,
	SM_ENTITY_DEAL,
	SM_ENTITY_COUNT
} SmEntity;

/* where a routing sent a row: a rep, or (leads) a pool */
typedef struct SmRouting
{
	int64		rule_id;
	int64		rep_id;			/* 0: none */
	int64		pool_id;		/* 0: none */
} SmRouting;

extern int	sm_entity_from_name(const char *name);

/* whose turn it is (lead_turns.c); SPI connected, as the tables' owner */
extern bool sm_turn_round_robin(int64 team_id, int64 *rep);
extern bool sm_turn_load_balanced(int entity, int64 team_id, int64 *rep);
extern bool sm_rep_active(int64 rep_id);
extern void sm_turns_flush(void);

#endif							/* SALESMGMT_LEAD_H */
