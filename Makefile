# salesmgmt: PGXS build.  `make && make install`, then CREATE EXTENSION salesmgmt.
#
# C sources: one file per concern in src/ (see src/salesmgmt.h for the map).
# SQL: each concern's tables, functions and views sit beside its C file as
# src/<concern>.sql; the install script is those files concatenated in the
# order of SQL_PARTS below (later parts reference earlier ones).
#
# Releases: a released install script is frozen in upgrade/ and never
# changes.  Every schema change after it goes into src/<concern>.sql (the
# next install script) AND into the upgrade script from the previous
# version, which is built from UPGRADE_PARTS: per-topic deltas in
# upgrade/<from>--<to>/ for concerns that existed in <from>, then the whole
# src/<concern>.sql of concerns new in <to>.  test/t/005_upgrade.pl proves
# that an upgraded database equals a fresh install.

EXTENSION    = salesmgmt
EXTVERSION   = 0.2.0
PREVVERSION  = 0.1.0
MODULE_big   = salesmgmt
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

SQL_PARTS    = src/core.sql \
               src/pipeline.sql \
               src/forecast.sql \
               src/commission.sql \
               src/kpi.sql \
               src/webhook.sql \
               src/analytics.sql \
               src/security_org.sql \
               src/security.sql \
               src/security_rls.sql \
               src/security_rights.sql \
               src/rules.sql \
               src/webhook_events.sql \
               src/security_references.sql \
               src/lead.sql \
               src/lead_score.sql \
               src/process.sql \
               src/process_followup.sql \
               src/process_plan.sql \
               src/process_approval.sql \
               src/product.sql \
               src/training.sql \
               src/subscription.sql \
               src/history.sql \
               src/dedup.sql \
               src/org_history.sql \
               src/forecast_dist.sql \
               src/scaleout.sql \
               src/security_deal_owner.sql \
               src/quota_as_of.sql

# The upgrade from the previous release, in order: deltas of existing
# concerns first, then the new concerns' parts (which SQL_PARTS also lists,
# after security.sql, so both scripts create them the same way).
# security_org.sql (the C visibility predicates) only adds objects and
# comes first: the policies that the rls delta recreates call them.
UPGRADE_PARTS = src/security_org.sql \
                upgrade/0.1.0--0.2.0/core-convert-amount.sql \
                upgrade/0.1.0--0.2.0/core-reporting-currency.sql \
                upgrade/0.1.0--0.2.0/webhook.sql \
                upgrade/0.1.0--0.2.0/rls.sql \
                upgrade/0.1.0--0.2.0/holes.sql \
                upgrade/0.1.0--0.2.0/products.sql \
                upgrade/0.1.0--0.2.0/process.sql \
                upgrade/0.1.0--0.2.0/leads.sql \
                upgrade/0.1.0--0.2.0/training.sql \
                upgrade/0.1.0--0.2.0/org-history.sql \
                upgrade/0.1.0--0.2.0/commission-measure.sql \
                upgrade/0.1.0--0.2.0/deal-owner.sql \
                upgrade/0.1.0--0.2.0/forecast-family.sql \
                upgrade/0.1.0--0.2.0/commission-family-rates.sql \
                upgrade/0.1.0--0.2.0/rls-per-command.sql \
                src/security_rls.sql \
                src/security_rights.sql \
                src/rules.sql \
                src/webhook_events.sql \
                src/security_references.sql \
                src/lead.sql \
                src/lead_score.sql \
                src/process.sql \
                src/process_followup.sql \
                src/process_plan.sql \
                src/process_approval.sql \
                src/product.sql \
                src/training.sql \
                src/subscription.sql \
                src/history.sql \
                src/dedup.sql \
                src/org_history.sql \
                src/forecast_dist.sql \
                src/scaleout.sql \
                src/security_deal_owner.sql \
               src/quota_as_of.sql

UPGRADE_SCRIPT = $(EXTENSION)--$(PREVVERSION)--$(EXTVERSION).sql
DATA         = $(wildcard upgrade/$(EXTENSION)--*.sql)
DATA_built   = $(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SCRIPT)
EXTRA_CLEAN  = $(DATA_built)

# pg_regress: every sql/<name>.sql with expected/<name>.out; each script
# creates the extension afresh so the suites are independent of each other.
REGRESS      = $(sort $(notdir $(basename $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=plpgsql

PG_CPPFLAGS  = -I$(srcdir)/src -DSM_LIBRARY_VERSION='"$(EXTVERSION)"' $(shell curl-config --cflags 2>/dev/null)
# -Wextra minus unused-parameter: fmgr's calling convention and the server's
# own inline functions leave parameters unused by design.
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter $(SM_EXTRA_CFLAGS)
# libcrypto: the webhook worker keeps OpenSSL HMAC contexts keyed per secret
# (webhook_sign.c); PostgreSQL itself is built with OpenSSL.
SHLIB_LINK   = $(shell curl-config --libs 2>/dev/null || echo -lcurl) -lcrypto

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies (unless the server was configured with
# --enable-depend): every object depends on every header of src/, so a
# changed struct never meets an object compiled against the old one.
$(OBJS): $(wildcard src/*.h)

# A part that is listed but missing fails the build (make names it):
# leaving it out silently would ship a script without it.
$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	@for f in $(SQL_PARTS); do \
		printf -- '-- ===== %s =====\n' "$$f"; cat $$f; printf '\n'; \
	done > $@

$(UPGRADE_SCRIPT): $(UPGRADE_PARTS)
	@{ printf -- '-- salesmgmt %s to %s: ALTER EXTENSION salesmgmt UPDATE\n' $(PREVVERSION) $(EXTVERSION); \
	  printf -- '\\echo Use "ALTER EXTENSION salesmgmt UPDATE" to load this file. \\quit\n'; \
	  for f in $(UPGRADE_PARTS); do \
		printf -- '-- ===== %s =====\n' "$$f"; cat $$f; printf '\n'; \
	done; } > $@

.PHONY: test demo
test:
	scripts/test
demo:
	scripts/demo
