# salesmgmt: PGXS build.  `make && make install`, then CREATE EXTENSION salesmgmt.
#
# C sources: one file per concern in src/ (see src/salesmgmt.h for the map).
# SQL: each concern's tables, functions and views sit beside its C file as
# src/<concern>.sql; the install script is those files concatenated in the
# order of SQL_PARTS below (later parts reference earlier ones).

EXTENSION    = salesmgmt
EXTVERSION   = 0.1.0
MODULE_big   = salesmgmt
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

SQL_PARTS    = src/core.sql \
               src/pipeline.sql \
               src/forecast.sql \
               src/commission.sql \
               src/kpi.sql \
               src/webhook.sql \
               src/analytics.sql \
               src/security.sql

DATA_built   = $(EXTENSION)--$(EXTVERSION).sql
EXTRA_CLEAN  = $(EXTENSION)--$(EXTVERSION).sql

# pg_regress: every sql/<name>.sql with expected/<name>.out; each script
# creates the extension afresh so the suites are independent of each other.
REGRESS      = $(sort $(notdir $(basename $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=plpgsql

PG_CPPFLAGS  = -I$(srcdir)/src $(shell curl-config --cflags 2>/dev/null)
# -Wextra minus unused-parameter: fmgr's calling convention and the server's
# own inline functions leave parameters unused by design.
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter $(SM_EXTRA_CFLAGS)
SHLIB_LINK   = $(shell curl-config --libs 2>/dev/null || echo -lcurl)

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(wildcard $(SQL_PARTS))
	@for f in $(wildcard $(SQL_PARTS)); do \
		printf -- '-- ===== %s =====\n' "$$f"; cat $$f; printf '\n'; \
	done > $@

.PHONY: test demo
test:
	scripts/test
demo:
	scripts/demo
