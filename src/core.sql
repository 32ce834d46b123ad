-- core.sql: the CRM data model, the skeleton every other concern hangs on.
--
-- Customer relationship pillar: teams and reps, accounts (customers) and
-- their contacts, communication records (activities), transaction history
-- (payments and refunds).  Sales-process skeleton: pipelines and stages,
-- deals and their credit splits, quotas (sales targets) and sales tasks
-- (the sales plan).  See docs/data-model.md.

\echo Use "CREATE EXTENSION salesmgmt" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Reference data: currencies (ISO 4217) and dated exchange rates
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.currency (
    code        char(3) PRIMARY KEY
                CONSTRAINT currency_code_format CHECK (code ~ '^[A-Z]{3}$'),
    name        text NOT NULL,
    minor_units smallint NOT NULL DEFAULT 2
                CONSTRAINT currency_minor_units_range CHECK (minor_units BETWEEN 0 AND 4),
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE salesmgmt.currency IS 'ISO 4217 currencies that amounts may be recorded in; the active codes are preinstalled, add others if needed.';
COMMENT ON COLUMN salesmgmt.currency.code IS 'Three-letter ISO 4217 code, e.g. USD, EUR, CNY.';
COMMENT ON COLUMN salesmgmt.currency.name IS 'English name of the currency.';
COMMENT ON COLUMN salesmgmt.currency.minor_units IS 'Number of decimal places of the currency''s minor unit (ISO 4217 exponent).';
COMMENT ON COLUMN salesmgmt.currency.builtin IS 'True for the codes the extension installs; pg_dump keeps only the rows a user added.';

INSERT INTO salesmgmt.currency (code, name, minor_units) VALUES
 ('AED','UAE Dirham',2),('AFN','Afghani',2),('ALL','Lek',2),('AMD','Armenian Dram',2),
 ('ANG','Netherlands Antillean Guilder',2),('AOA','Kwanza',2),('ARS','Argentine Peso',2),
 ('AUD','Australian Dollar',2),('AWG','Aruban Florin',2),('AZN','Azerbaijan Manat',2),
 ('BAM','Convertible Mark',2),('BBD','Barbados Dollar',2),('BDT','Taka',2),('BGN','Bulgarian Lev',2),
 ('BHD','Bahraini Dinar',3),('BIF','Burundi Franc',0),('BMD','Bermudian Dollar',2),
 ('BND','Brunei Dollar',2),('BOB','Boliviano',2),('BRL','Brazilian Real',2),('BSD','Bahamian Dollar',2),
 ('BTN','Ngultrum',2),('BWP','Pula',2),('BYN','Belarusian Ruble',2),('BZD','Belize Dollar',2),
 ('CAD','Canadian Dollar',2),('CDF','Congolese Franc',2),('CHF','Swiss Franc',2),('CLP','Chilean Peso',0),
 ('CNY','Yuan Renminbi',2),('COP','Colombian Peso',2),('CRC','Costa Rican Colon',2),('CUP','Cuban Peso',2),
 ('CVE','Cabo Verde Escudo',2),('CZK','Czech Koruna',2),('DJF','Djibouti Franc',0),('DKK','Danish Krone',2),
 ('DOP','Dominican Peso',2),('DZD','Algerian Dinar',2),('EGP','Egyptian Pound',2),('ERN','Nakfa',2),
 ('ETB','Ethiopian Birr',2),('EUR','Euro',2),('FJD','Fiji Dollar',2),('FKP','Falkland Islands Pound',2),
 ('GBP','Pound Sterling',2),('GEL','Lari',2),('GHS','Ghana Cedi',2),('GIP','Gibraltar Pound',2),
 ('GMD','Dalasi',2),('GNF','Guinean Franc',0),('GTQ','Quetzal',2),('GYD','Guyana Dollar',2),
 ('HKD','Hong Kong Dollar',2),('HNL','Lempira',2),('HTG','Gourde',2),('HUF','Forint',2),
 ('IDR','Rupiah',2),('ILS','New Israeli Sheqel',2),('INR','Indian Rupee',2),('IQD','Iraqi Dinar',3),
 ('IRR','Iranian Rial',2),('ISK','Iceland Krona',0),('JMD','Jamaican Dollar',2),('JOD','Jordanian Dinar',3),
 ('JPY','Yen',0),('KES','Kenyan Shilling',2),('KGS','Som',2),('KHR','Riel',2),('KMF','Comorian Franc',0),
 ('KPW','North Korean Won',2),('KRW','Won',0),('KWD','Kuwaiti Dinar',3),('KYD','Cayman Islands Dollar',2),
 ('KZT','Tenge',2),('LAK','Lao Kip',2),('LBP','Lebanese Pound',2),('LKR','Sri Lanka Rupee',2),
 ('LRD','Liberian Dollar',2),('LSL','Loti',2),('LYD','Libyan Dinar',3),('MAD','Moroccan Dirham',2),
 ('MDL','Moldovan Leu',2),('MGA','Malagasy Ariary',2),('MKD','Denar',2),('MMK','Kyat',2),
 ('MNT','Tugrik',2),('MOP','Pataca',2),('MRU','Ouguiya',2),('MUR','Mauritius Rupee',2),
 ('MVR','Rufiyaa',2),('MWK','Malawi Kwacha',2),('MXN','Mexican Peso',2),('MYR','Malaysian Ringgit',2),
 ('MZN','Mozambique Metical',2),('NAD','Namibia Dollar',2),('NGN','Naira',2),('NIO','Cordoba Oro',2),
 ('NOK','Norwegian Krone',2),('NPR','Nepalese Rupee',2),('NZD','New Zealand Dollar',2),('OMR','Rial Omani',3),
 ('PAB','Balboa',2),('PEN','Sol',2),('PGK','Kina',2),('PHP','Philippine Peso',2),('PKR','Pakistan Rupee',2),
 ('PLN','Zloty',2),('PYG','Guarani',0),('QAR','Qatari Rial',2),('RON','Romanian Leu',2),
 ('RSD','Serbian Dinar',2),('RUB','Russian Ruble',2),('RWF','Rwanda Franc',0),('SAR','Saudi Riyal',2),
 ('SBD','Solomon Islands Dollar',2),('SCR','Seychelles Rupee',2),('SDG','Sudanese Pound',2),
 ('SEK','Swedish Krona',2),('SGD','Singapore Dollar',2),('SHP','Saint Helena Pound',2),('SLE','Leone',2),
 ('SOS','Somali Shilling',2),('SRD','Surinam Dollar',2),('SSP','South Sudanese Pound',2),('STN','Dobra',2),
 ('SVC','El Salvador Colon',2),('SYP','Syrian Pound',2),('SZL','Lilangeni',2),('THB','Baht',2),
 ('TJS','Somoni',2),('TMT','Turkmenistan New Manat',2),('TND','Tunisian Dinar',3),('TOP','Pa''anga',2),
 ('TRY','Turkish Lira',2),('TTD','Trinidad and Tobago Dollar',2),('TWD','New Taiwan Dollar',2),
 ('TZS','Tanzanian Shilling',2),('UAH','Hryvnia',2),('UGX','Uganda Shilling',0),('USD','US Dollar',2),
 ('UYU','Peso Uruguayo',2),('UZS','Uzbekistan Sum',2),('VES','Bolivar Soberano',2),('VND','Dong',0),
 ('VUV','Vatu',0),('WST','Tala',2),('XAF','CFA Franc BEAC',0),('XCD','East Caribbean Dollar',2),
 ('XOF','CFA Franc BCEAO',0),('XPF','CFP Franc',0),('YER','Yemeni Rial',2),('ZAR','Rand',2),
 ('ZMW','Zambian Kwacha',2),('ZWL','Zimbabwe Dollar',2);
UPDATE salesmgmt.currency SET builtin = true;

CREATE TABLE salesmgmt.currency_rate (
    currency        char(3) NOT NULL REFERENCES salesmgmt.currency (code),
    quote_currency  char(3) NOT NULL REFERENCES salesmgmt.currency (code),
    valid_from      date NOT NULL,
    rate            numeric(24,10) NOT NULL
                    CONSTRAINT currency_rate_positive CHECK (rate > 0),
    PRIMARY KEY (currency, quote_currency, valid_from),
    CONSTRAINT currency_rate_distinct_pair CHECK (currency <> quote_currency)
);
CREATE INDEX ON salesmgmt.currency_rate (quote_currency);
COMMENT ON TABLE salesmgmt.currency_rate IS 'Dated exchange rates: from valid_from until the next row of the same pair, 1 unit of currency is worth rate units of quote_currency.';
COMMENT ON COLUMN salesmgmt.currency_rate.currency IS 'Currency being converted (ISO 4217).';
COMMENT ON COLUMN salesmgmt.currency_rate.quote_currency IS 'Currency the rate is expressed in (ISO 4217), usually the reporting currency.';
COMMENT ON COLUMN salesmgmt.currency_rate.valid_from IS 'First day the rate applies; it applies until the next valid_from of the same pair.';
COMMENT ON COLUMN salesmgmt.currency_rate.rate IS 'Units of quote_currency for one unit of currency (exact numeric).';

-- convert_amount: an amount in p_from expressed in p_to on p_on, using the
-- latest rate of the pair valid on that day (or the inverse of the reverse
-- pair).  A missing rate is an error naming the pair and date, never zero.
-- The one implementation of this rule is in C (src/core_currency.c), which
-- forecasts, commissions and scorecards share.
CREATE FUNCTION salesmgmt.convert_amount(p_amount numeric, p_from char(3), p_to char(3), p_on date)
RETURNS numeric
AS 'MODULE_PATHNAME', 'sm_convert_amount'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.convert_amount(numeric, char, char, date) IS 'Converts an amount between currencies with the dated rate valid on the given day; raises 22023 naming the pair and date when no rate exists.';

-- The reporting currency as SQL sees it: the setting salesmgmt.reporting_currency,
-- whose default is defined once, in C (SM_DEFAULT_CURRENCY, src/salesmgmt.h).
-- Calling it loads the library, which defines the setting.
CREATE FUNCTION salesmgmt.reporting_currency() RETURNS char(3)
AS 'MODULE_PATHNAME', 'sm_reporting_currency_sql'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION salesmgmt.reporting_currency() IS 'The reporting currency (setting salesmgmt.reporting_currency, default USD) that the analytics views convert amounts to.';

-- Rates to the reporting currency as validity ranges, so that a view can
-- convert a million amounts with one hash join instead of a million
-- lookups.  Same precedence as salesmgmt.convert_amount: the pair quoted in
-- the reporting currency when a row of it is valid on the day, else the
-- reverse pair (divided, not multiplied by a rounded inverse).
CREATE VIEW salesmgmt.reporting_rate WITH (security_invoker = true) AS
WITH target AS (
    SELECT salesmgmt.reporting_currency() AS code
),
direct AS (
    SELECT r.currency, r.valid_from,
           coalesce(lead(r.valid_from) OVER (PARTITION BY r.currency ORDER BY r.valid_from),
                    'infinity'::date) AS valid_until,
           r.rate
      FROM salesmgmt.currency_rate r
      JOIN target t ON r.quote_currency = t.code
),
first_direct AS (
    SELECT currency, min(valid_from) AS first_from FROM direct GROUP BY currency
),
reverse AS (
    SELECT r.quote_currency AS currency, r.valid_from,
           least(coalesce(lead(r.valid_from) OVER (PARTITION BY r.quote_currency ORDER BY r.valid_from),
                          'infinity'::date),
                 coalesce(fd.first_from, 'infinity'::date)) AS valid_until,
           r.rate
      FROM salesmgmt.currency_rate r
      JOIN target t ON r.currency = t.code
      LEFT JOIN first_direct fd ON fd.currency = r.quote_currency
)
SELECT u.currency, u.quote_currency, u.valid_from, u.valid_until,
       u.valid_from::timestamptz AS valid_from_at, u.valid_until::timestamptz AS valid_until_at,
       u.rate, u.inverse
  FROM (SELECT t.code AS currency, t.code AS quote_currency, '-infinity'::date AS valid_from,
               'infinity'::date AS valid_until, 1::numeric AS rate, false AS inverse
          FROM target t
        UNION ALL
        SELECT d.currency, t.code, d.valid_from, d.valid_until, d.rate, false
          FROM direct d, target t
        UNION ALL
        SELECT v.currency, t.code, v.valid_from, v.valid_until, v.rate, true
          FROM reverse v, target t
         WHERE v.valid_from < v.valid_until) u;
COMMENT ON VIEW salesmgmt.reporting_rate IS 'Conversion of each currency to the reporting currency as validity ranges: amount * rate (or amount / rate when inverse) for a day in [valid_from, valid_until). Same precedence as salesmgmt.convert_amount.';
COMMENT ON COLUMN salesmgmt.reporting_rate.currency IS 'Currency converted from.';
COMMENT ON COLUMN salesmgmt.reporting_rate.quote_currency IS 'The reporting currency (salesmgmt.reporting_currency).';
COMMENT ON COLUMN salesmgmt.reporting_rate.valid_from IS 'First day the rate applies (-infinity for the reporting currency itself).';
COMMENT ON COLUMN salesmgmt.reporting_rate.valid_until IS 'Day the next rate takes over (exclusive; infinity for the latest rate).';
COMMENT ON COLUMN salesmgmt.reporting_rate.valid_from_at IS 'valid_from as a time: midnight starting that day in the session time zone (compare timestamps with it without casting each one to a date).';
COMMENT ON COLUMN salesmgmt.reporting_rate.valid_until_at IS 'valid_until as a time: midnight starting that day in the session time zone.';
COMMENT ON COLUMN salesmgmt.reporting_rate.rate IS 'Rate of salesmgmt.currency_rate; 1 for the reporting currency itself.';
COMMENT ON COLUMN salesmgmt.reporting_rate.inverse IS 'True when only the reverse pair is known: the amount is divided by rate instead of multiplied.';

-- ---------------------------------------------------------------------------
-- Teams and reps
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.team (
    team_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CONSTRAINT team_name_not_blank CHECK (btrim(name) <> ''),
    parent_team_id  bigint REFERENCES salesmgmt.team (team_id),
    manager_rep_id  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_name_unique UNIQUE (name),
    CONSTRAINT team_not_own_parent CHECK (parent_team_id IS DISTINCT FROM team_id)
);
CREATE INDEX ON salesmgmt.team (parent_team_id);
COMMENT ON TABLE salesmgmt.team IS 'Sales teams, a tree through parent_team_id; a manager is responsible for the team and every team below it.';
COMMENT ON COLUMN salesmgmt.team.team_id IS 'Identity of the team.';
COMMENT ON COLUMN salesmgmt.team.name IS 'Unique team name.';
COMMENT ON COLUMN salesmgmt.team.parent_team_id IS 'Team this one reports to; null for a top-level team. Cycles are refused.';
COMMENT ON COLUMN salesmgmt.team.manager_rep_id IS 'Rep who manages the team (and, through the tree, every sub-team).';
COMMENT ON COLUMN salesmgmt.team.created_at IS 'When the team was created.';

CREATE TABLE salesmgmt.rep (
    rep_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT rep_name_not_blank CHECK (btrim(name) <> ''),
    email       text
                CONSTRAINT rep_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    team_id     bigint REFERENCES salesmgmt.team (team_id),
    db_role     name,
    hire_date   date,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rep_email_unique UNIQUE (email),
    CONSTRAINT rep_db_role_unique UNIQUE (db_role)
);
CREATE INDEX ON salesmgmt.rep (team_id);
COMMENT ON TABLE salesmgmt.rep IS 'Sales representatives (and their managers); db_role maps a rep to the database role they log in as.';
COMMENT ON COLUMN salesmgmt.rep.rep_id IS 'Identity of the rep.';
COMMENT ON COLUMN salesmgmt.rep.name IS 'Full name.';
COMMENT ON COLUMN salesmgmt.rep.email IS 'Work e-mail address, unique.';
COMMENT ON COLUMN salesmgmt.rep.team_id IS 'Team the rep belongs to.';
COMMENT ON COLUMN salesmgmt.rep.db_role IS 'Database role the rep logs in as; row-level security uses it to decide what the rep sees.';
COMMENT ON COLUMN salesmgmt.rep.hire_date IS 'Date the rep joined.';
COMMENT ON COLUMN salesmgmt.rep.active IS 'False once the rep has left; history stays.';
COMMENT ON COLUMN salesmgmt.rep.created_at IS 'When the row was created.';

CREATE INDEX ON salesmgmt.team (manager_rep_id);

-- team.manager_rep_id refers to a rep, but not through a foreign key:
-- rep.team_id already refers to team, and a cycle of foreign keys between
-- extension configuration tables cannot be restored by pg_dump/pg_restore
-- (each table's data is loaded in its own transaction).  These two
-- triggers keep the reference intact instead.  A team loaded while no rep
-- exists yet (the restore of a dump, which loads team before rep) is not
-- checked; every later change is.
CREATE FUNCTION salesmgmt.team_check_manager() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.manager_rep_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM salesmgmt.rep WHERE rep_id = NEW.manager_rep_id)
       AND EXISTS (SELECT 1 FROM salesmgmt.rep)
    THEN
        RAISE EXCEPTION 'team % cannot be managed by rep %: no such rep', NEW.team_id, NEW.manager_rep_id
            USING ERRCODE = '23503', CONSTRAINT = 'team_manager_rep_fk',
                  HINT = 'Create the rep first, or leave manager_rep_id null.';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER team_manager_rep_fk
    AFTER INSERT OR UPDATE OF manager_rep_id ON salesmgmt.team
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.team_check_manager();

CREATE FUNCTION salesmgmt.rep_check_not_manager() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_team text;
BEGIN
    SELECT name INTO v_team FROM salesmgmt.team WHERE manager_rep_id = OLD.rep_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rep % still manages team "%"', OLD.rep_id, v_team
            USING ERRCODE = '23503', CONSTRAINT = 'team_manager_rep_fk',
                  HINT = 'Give the team another manager first, or mark the rep inactive instead of deleting it.';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER rep_manages_no_team
    BEFORE DELETE ON salesmgmt.rep
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.rep_check_not_manager();

-- A team may not be its own ancestor: walk up from the new parent.
CREATE FUNCTION salesmgmt.team_check_cycle() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cycle boolean;
BEGIN
    IF NEW.parent_team_id IS NULL THEN
        RETURN NEW;
    END IF;
    -- Serialise changes to the tree: two concurrent moves could each be
    -- acyclic alone and form a cycle together.  After the lock, this
    -- statement's snapshot sees the other move if it committed.
    PERFORM pg_catalog.pg_advisory_xact_lock('salesmgmt.team'::regclass::oid::int4, 0);
    WITH RECURSIVE up(team_id, parent_team_id, depth) AS (
        SELECT t.team_id, t.parent_team_id, 1 FROM salesmgmt.team t WHERE t.team_id = NEW.parent_team_id
        UNION ALL
        SELECT t.team_id, t.parent_team_id, up.depth + 1
          FROM salesmgmt.team t JOIN up ON t.team_id = up.parent_team_id
         WHERE up.team_id <> NEW.team_id AND up.depth < 1000
    )
    SELECT bool_or(team_id = NEW.team_id) INTO v_cycle FROM up;
    IF v_cycle THEN
        RAISE EXCEPTION 'team % cannot report to team %: that would make it its own ancestor',
            NEW.team_id, NEW.parent_team_id
            USING ERRCODE = '23514', CONSTRAINT = 'team_no_cycle',
                  DETAIL = 'The team tree must not contain cycles.',
                  HINT = 'Choose a parent team that is not below this team.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER team_no_cycle
    BEFORE INSERT OR UPDATE OF parent_team_id ON salesmgmt.team
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.team_check_cycle();

-- The team tree flattened: each team with itself and every team below it.
-- CYCLE guards the walk even though team_no_cycle refuses cycles.
CREATE VIEW salesmgmt.team_closure WITH (security_invoker = true) AS
WITH RECURSIVE down (ancestor_team_id, team_id, depth) AS (
    SELECT t.team_id, t.team_id, 0 FROM salesmgmt.team t
    UNION ALL
    SELECT d.ancestor_team_id, c.team_id, d.depth + 1
      FROM down d
      JOIN salesmgmt.team c ON c.parent_team_id = d.team_id
) CYCLE team_id SET is_cycle USING path
SELECT ancestor_team_id, team_id, depth FROM down WHERE NOT is_cycle;
COMMENT ON VIEW salesmgmt.team_closure IS 'The team tree flattened: one row for each team and each team at or below it, so that team figures can include every sub-team.';
COMMENT ON COLUMN salesmgmt.team_closure.ancestor_team_id IS 'Team whose figures roll up.';
COMMENT ON COLUMN salesmgmt.team_closure.team_id IS 'The ancestor team itself or a team anywhere below it.';
COMMENT ON COLUMN salesmgmt.team_closure.depth IS 'Levels between the two teams: 0 for the team itself, 1 for a direct sub-team, ...';

-- ---------------------------------------------------------------------------
-- Accounts (customers) and contacts
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.account (
    account_id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CONSTRAINT account_name_not_blank CHECK (btrim(name) <> ''),
    industry        text,
    region          text,
    segment         text,
    owner_rep_id    bigint REFERENCES salesmgmt.rep (rep_id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    extra           jsonb NOT NULL DEFAULT '{}'
                    CONSTRAINT account_extra_is_object CHECK (jsonb_typeof(extra) = 'object'),
    next_follow_up  date
);
CREATE INDEX ON salesmgmt.account (owner_rep_id);
COMMENT ON TABLE salesmgmt.account IS 'Customers (companies or people) the sales organisation sells to.';
COMMENT ON COLUMN salesmgmt.account.account_id IS 'Identity of the account.';
COMMENT ON COLUMN salesmgmt.account.name IS 'Customer name.';
COMMENT ON COLUMN salesmgmt.account.industry IS 'Industry, free text (e.g. Manufacturing).';
COMMENT ON COLUMN salesmgmt.account.region IS 'Sales region, free text (e.g. EMEA, East China).';
COMMENT ON COLUMN salesmgmt.account.segment IS 'Segment, free text (e.g. Enterprise, SMB).';
COMMENT ON COLUMN salesmgmt.account.owner_rep_id IS 'Rep who owns the relationship.';
COMMENT ON COLUMN salesmgmt.account.created_at IS 'When the account was created.';
COMMENT ON COLUMN salesmgmt.account.extra IS 'Custom fields as a JSON object.';
COMMENT ON COLUMN salesmgmt.account.next_follow_up IS 'When the owner plans to contact the account next (accounts_gone_quiet, follow-up rules).';

CREATE TABLE salesmgmt.contact (
    contact_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES salesmgmt.account (account_id) ON DELETE CASCADE,
    name        text NOT NULL
                CONSTRAINT contact_name_not_blank CHECK (btrim(name) <> ''),
    email       text
                CONSTRAINT contact_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
    phone       text,
    title       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON salesmgmt.contact (account_id);
COMMENT ON TABLE salesmgmt.contact IS 'People at a customer account.';
COMMENT ON COLUMN salesmgmt.contact.contact_id IS 'Identity of the contact.';
COMMENT ON COLUMN salesmgmt.contact.account_id IS 'Account the contact works for.';
COMMENT ON COLUMN salesmgmt.contact.name IS 'Full name.';
COMMENT ON COLUMN salesmgmt.contact.email IS 'E-mail address.';
COMMENT ON COLUMN salesmgmt.contact.phone IS 'Phone number, free text.';
COMMENT ON COLUMN salesmgmt.contact.title IS 'Job title (e.g. CFO, Head of Procurement).';
COMMENT ON COLUMN salesmgmt.contact.created_at IS 'When the contact was created.';

-- ---------------------------------------------------------------------------
-- Pipelines and stages
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.pipeline (
    pipeline_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name                text NOT NULL
                        CONSTRAINT pipeline_name_not_blank CHECK (btrim(name) <> ''),
    transition_policy   text NOT NULL DEFAULT 'forward'
                        CONSTRAINT pipeline_transition_policy_valid
                        CHECK (transition_policy IN ('free', 'forward', 'explicit')),
    probability_source  text NOT NULL DEFAULT 'stage'
                        CONSTRAINT pipeline_probability_source_valid
                        CHECK (probability_source IN ('stage', 'historical')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pipeline_name_unique UNIQUE (name)
);
COMMENT ON TABLE salesmgmt.pipeline IS 'A sales process: an ordered set of stages a deal moves through.';
COMMENT ON COLUMN salesmgmt.pipeline.pipeline_id IS 'Identity of the pipeline.';
COMMENT ON COLUMN salesmgmt.pipeline.name IS 'Unique pipeline name.';
COMMENT ON COLUMN salesmgmt.pipeline.transition_policy IS 'Which stage moves are allowed: free (any), forward (later stages, won or lost; backwards only where stage_transition allows), explicit (only moves listed in stage_transition).';
COMMENT ON COLUMN salesmgmt.pipeline.probability_source IS 'Where forecasts take a stage''s win probability from: stage (configured) or historical (learned by salesmgmt.win_rates).';
COMMENT ON COLUMN salesmgmt.pipeline.created_at IS 'When the pipeline was created.';

CREATE TABLE salesmgmt.stage (
    stage_id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    pipeline_id         bigint NOT NULL REFERENCES salesmgmt.pipeline (pipeline_id) ON DELETE CASCADE,
    name                text NOT NULL
                        CONSTRAINT stage_name_not_blank CHECK (btrim(name) <> ''),
    position            integer NOT NULL
                        CONSTRAINT stage_position_nonnegative CHECK (position >= 0),
    probability         numeric(5,4) NOT NULL
                        CONSTRAINT stage_probability_range CHECK (probability BETWEEN 0 AND 1),
    forecast_category   text NOT NULL DEFAULT 'pipeline'
                        CONSTRAINT stage_forecast_category_valid
                        CHECK (forecast_category IN ('pipeline', 'best_case', 'commit', 'closed', 'omitted')),
    outcome             text NOT NULL DEFAULT 'open'
                        CONSTRAINT stage_outcome_valid CHECK (outcome IN ('open', 'won', 'lost')),
    required_fields     text[],
    entry_roles         name[],
    max_days_in_stage   integer
                        CONSTRAINT stage_max_days_positive CHECK (max_days_in_stage > 0),
    CONSTRAINT stage_name_unique_in_pipeline UNIQUE (pipeline_id, name),
    CONSTRAINT stage_position_unique_in_pipeline UNIQUE (pipeline_id, position) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT stage_pipeline_key UNIQUE (pipeline_id, stage_id),
    CONSTRAINT stage_closed_category CHECK ((outcome = 'won') = (forecast_category = 'closed'))
);
COMMENT ON TABLE salesmgmt.stage IS 'Stages of a pipeline, ordered by position; outcome tells open stages from won and lost ones.';
COMMENT ON COLUMN salesmgmt.stage.stage_id IS 'Identity of the stage.';
COMMENT ON COLUMN salesmgmt.stage.pipeline_id IS 'Pipeline the stage belongs to.';
COMMENT ON COLUMN salesmgmt.stage.name IS 'Stage name, unique within its pipeline.';
COMMENT ON COLUMN salesmgmt.stage.position IS 'Order of the stage in its pipeline (smaller comes first).';
COMMENT ON COLUMN salesmgmt.stage.probability IS 'Default probability (0..1) that a deal in this stage is won.';
COMMENT ON COLUMN salesmgmt.stage.forecast_category IS 'Default forecast category of deals in this stage: pipeline, best_case, commit, closed (won) or omitted.';
COMMENT ON COLUMN salesmgmt.stage.outcome IS 'open, won or lost.';
COMMENT ON COLUMN salesmgmt.stage.required_fields IS 'Stage gate: deal columns or keys of deal.extra that must be non-null and non-empty before a deal may enter this stage.';
COMMENT ON COLUMN salesmgmt.stage.entry_roles IS 'Database roles whose members may move a deal into this stage; null means anyone allowed to update the deal.';
COMMENT ON COLUMN salesmgmt.stage.max_days_in_stage IS 'Days a deal may stay in this stage before it counts as stalled; null for no limit.';

-- ---------------------------------------------------------------------------
-- Deals, credit splits, payments
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.deal (
    deal_id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name                text NOT NULL
                        CONSTRAINT deal_name_not_blank CHECK (btrim(name) <> ''),
    account_id          bigint NOT NULL REFERENCES salesmgmt.account (account_id),
    owner_rep_id        bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    pipeline_id         bigint NOT NULL REFERENCES salesmgmt.pipeline (pipeline_id),
    stage_id            bigint NOT NULL,
    amount              numeric(18,2) NOT NULL DEFAULT 0
                        CONSTRAINT deal_amount_nonnegative CHECK (amount >= 0),
    currency            char(3) NOT NULL DEFAULT 'USD' REFERENCES salesmgmt.currency (code),
    expected_close_date date,
    probability         numeric(5,4)
                        CONSTRAINT deal_probability_range CHECK (probability BETWEEN 0 AND 1),
    forecast_category   text
                        CONSTRAINT deal_forecast_category_valid
                        CHECK (forecast_category IN ('pipeline', 'best_case', 'commit', 'closed', 'omitted')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    stage_entered_at    timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    lost_reason         text,
    extra               jsonb NOT NULL DEFAULT '{}'
                        CONSTRAINT deal_extra_is_object CHECK (jsonb_typeof(extra) = 'object'),
    price_book_id       bigint,
    max_discount_pct    numeric(5,2),
    CONSTRAINT deal_stage_in_pipeline FOREIGN KEY (pipeline_id, stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id),
    next_step           text,
    next_step_due       date
);
CREATE INDEX ON salesmgmt.deal (account_id);
CREATE INDEX ON salesmgmt.deal (owner_rep_id);
CREATE INDEX ON salesmgmt.deal (pipeline_id, stage_id);
CREATE INDEX ON salesmgmt.deal (stage_id);
CREATE INDEX ON salesmgmt.deal (currency);
CREATE INDEX ON salesmgmt.deal (expected_close_date);
CREATE INDEX ON salesmgmt.deal (closed_at);
COMMENT ON TABLE salesmgmt.deal IS 'Sales opportunities: an amount a customer may buy, moving through the stages of a pipeline.';
COMMENT ON COLUMN salesmgmt.deal.deal_id IS 'Identity of the deal.';
COMMENT ON COLUMN salesmgmt.deal.name IS 'Deal name.';
COMMENT ON COLUMN salesmgmt.deal.account_id IS 'Customer the deal is with.';
COMMENT ON COLUMN salesmgmt.deal.owner_rep_id IS 'Rep who owns the deal (gets all credit unless deal_split says otherwise).';
COMMENT ON COLUMN salesmgmt.deal.pipeline_id IS 'Pipeline the deal moves through.';
COMMENT ON COLUMN salesmgmt.deal.stage_id IS 'Current stage; must belong to the deal''s pipeline.';
COMMENT ON COLUMN salesmgmt.deal.amount IS 'Deal value in its currency (two decimals, never negative).';
COMMENT ON COLUMN salesmgmt.deal.currency IS 'ISO 4217 currency of amount.';
COMMENT ON COLUMN salesmgmt.deal.expected_close_date IS 'Date the deal is expected to close; decides its forecast period while open.';
COMMENT ON COLUMN salesmgmt.deal.probability IS 'Per-deal override of the stage''s win probability (0..1); null uses the stage''s.';
COMMENT ON COLUMN salesmgmt.deal.forecast_category IS 'Per-deal override of the stage''s forecast category; null uses the stage''s.';
COMMENT ON COLUMN salesmgmt.deal.created_at IS 'When the deal was created.';
COMMENT ON COLUMN salesmgmt.deal.updated_at IS 'When the deal was last changed.';
COMMENT ON COLUMN salesmgmt.deal.stage_entered_at IS 'When the deal entered its current stage.';
COMMENT ON COLUMN salesmgmt.deal.closed_at IS 'When the deal was won or lost; null while open.';
COMMENT ON COLUMN salesmgmt.deal.lost_reason IS 'Why a lost deal was lost.';
COMMENT ON COLUMN salesmgmt.deal.extra IS 'Custom fields as a JSON object (stage gates may require keys of it).';
COMMENT ON COLUMN salesmgmt.deal.next_step IS 'The next thing the owner will do to advance the deal (follow-up discipline: deals_without_next_step).';
COMMENT ON COLUMN salesmgmt.deal.next_step_due IS 'When the next step is due; follow-up rules act on deals past it.';
COMMENT ON COLUMN salesmgmt.deal.price_book_id IS 'Price book that prices the deal''s lines (one of the deal''s currency); null for the default book of the currency.';
COMMENT ON COLUMN salesmgmt.deal.max_discount_pct IS 'Largest discount_pct of the deal''s lines, maintained with the lines (approval rules can test it); null without lines.';

CREATE TABLE salesmgmt.deal_split (
    deal_id     bigint NOT NULL REFERENCES salesmgmt.deal (deal_id) ON DELETE CASCADE,
    rep_id      bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    share       numeric(5,4) NOT NULL
                CONSTRAINT deal_split_share_range CHECK (share > 0 AND share <= 1),
    PRIMARY KEY (deal_id, rep_id)
);
CREATE INDEX ON salesmgmt.deal_split (rep_id);
COMMENT ON TABLE salesmgmt.deal_split IS 'Credit shares of a deal between reps; the shares of a deal sum to 1 (checked at commit). A deal without splits credits its owner in full.';
COMMENT ON COLUMN salesmgmt.deal_split.deal_id IS 'Deal being split.';
COMMENT ON COLUMN salesmgmt.deal_split.rep_id IS 'Rep receiving a share of the credit.';
COMMENT ON COLUMN salesmgmt.deal_split.share IS 'Fraction of the deal credited to the rep, in (0, 1].';

-- Shares of a deal must sum to exactly 1; checked at commit so that rows
-- can be entered one by one.
CREATE FUNCTION salesmgmt.deal_split_check_total() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deal  bigint;
    v_total numeric;
    v_count bigint;
BEGIN
    v_deal := CASE WHEN TG_OP = 'DELETE' THEN OLD.deal_id ELSE NEW.deal_id END;
    -- Serialise split changes per deal: without the lock, two transactions
    -- that each bring the total to 1 could both pass and commit 2.  NO KEY
    -- UPDATE does not block foreign-key checks of other tables.
    PERFORM 1 FROM salesmgmt.deal WHERE deal_id = v_deal FOR NO KEY UPDATE;
    SELECT sum(share), count(*) INTO v_total, v_count
      FROM salesmgmt.deal_split WHERE deal_id = v_deal;
    IF v_count > 0 AND v_total <> 1 THEN
        RAISE EXCEPTION 'credit shares of deal % sum to %, not 1', v_deal, v_total
            USING ERRCODE = '23514', CONSTRAINT = 'deal_split_shares_sum_to_one',
                  DETAIL = format('The deal has %s split rows.', v_count),
                  HINT = 'Adjust the shares in the same transaction so they add up to 1, or delete all splits to credit the owner in full.';
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.deal_id <> NEW.deal_id THEN
        SELECT sum(share), count(*) INTO v_total, v_count
          FROM salesmgmt.deal_split WHERE deal_id = OLD.deal_id;
        IF v_count > 0 AND v_total <> 1 THEN
            RAISE EXCEPTION 'credit shares of deal % sum to %, not 1', OLD.deal_id, v_total
                USING ERRCODE = '23514', CONSTRAINT = 'deal_split_shares_sum_to_one';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER deal_split_shares_sum_to_one
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.deal_split
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.deal_split_check_total();

CREATE TABLE salesmgmt.payment (
    deal_id     bigint NOT NULL REFERENCES salesmgmt.deal (deal_id),
    payment_id  bigint GENERATED BY DEFAULT AS IDENTITY,
    kind        text NOT NULL DEFAULT 'payment'
                CONSTRAINT payment_kind_valid CHECK (kind IN ('payment', 'refund')),
    amount      numeric(18,2) NOT NULL
                CONSTRAINT payment_amount_positive CHECK (amount > 0),
    currency    char(3) NOT NULL REFERENCES salesmgmt.currency (code),
    paid_at     timestamptz NOT NULL DEFAULT now(),
    reference   text,
    deal_owner_rep_id bigint,
    PRIMARY KEY (deal_id, payment_id),
    CONSTRAINT payment_id_unique UNIQUE (payment_id)
);
CREATE INDEX ON salesmgmt.payment (currency);
CREATE INDEX ON salesmgmt.payment (paid_at);
COMMENT ON TABLE salesmgmt.payment IS 'Transaction history: money received for a deal (payment) or returned (refund).';
COMMENT ON COLUMN salesmgmt.payment.deal_id IS 'Deal the money is for.';
COMMENT ON COLUMN salesmgmt.payment.payment_id IS 'Identity of the payment.';
COMMENT ON COLUMN salesmgmt.payment.kind IS 'payment (money in) or refund (money back to the customer).';
COMMENT ON COLUMN salesmgmt.payment.amount IS 'Amount, always positive; kind gives the direction.';
COMMENT ON COLUMN salesmgmt.payment.currency IS 'ISO 4217 currency of amount.';
COMMENT ON COLUMN salesmgmt.payment.paid_at IS 'When the money moved.';
COMMENT ON COLUMN salesmgmt.payment.reference IS 'Invoice or bank reference, free text.';
COMMENT ON COLUMN salesmgmt.payment.deal_owner_rep_id IS 'Owner of the deal, a copy of deal.owner_rep_id kept by the triggers payment_deal_owner_insert, payment_deal_owner_update and deal_owner_cascade (row-level security reads it instead of looking the deal up); not written by hand.';

-- ---------------------------------------------------------------------------
-- Communication records
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.activity (
    activity_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL
                CONSTRAINT activity_kind_valid
                CHECK (kind IN ('call', 'email', 'meeting', 'visit', 'demo', 'note', 'coaching')),
    account_id  bigint REFERENCES salesmgmt.account (account_id),
    contact_id  bigint REFERENCES salesmgmt.contact (contact_id),
    deal_id     bigint REFERENCES salesmgmt.deal (deal_id),
    rep_id      bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    duration    interval
                CONSTRAINT activity_duration_nonnegative CHECK (duration >= interval '0'),
    outcome     text,
    notes       text,
    lead_id     bigint,
    CONSTRAINT activity_account_or_lead CHECK (account_id IS NOT NULL OR lead_id IS NOT NULL OR kind = 'coaching'),
    kpi_id      bigint,
    deal_owner_rep_id bigint
);
CREATE INDEX ON salesmgmt.activity (account_id, occurred_at);
CREATE INDEX ON salesmgmt.activity (contact_id);
CREATE INDEX ON salesmgmt.activity (deal_id);
CREATE INDEX ON salesmgmt.activity (rep_id, occurred_at);
COMMENT ON TABLE salesmgmt.activity IS 'Communication records with customers: calls, e-mails, meetings, visits, demos and notes.';
COMMENT ON COLUMN salesmgmt.activity.activity_id IS 'Identity of the activity.';
COMMENT ON COLUMN salesmgmt.activity.kind IS 'call, email, meeting, visit, demo or note; coaching for a manager''s one-to-one coaching session with the rep (rep_id), about a KPI (kpi_id).';
COMMENT ON COLUMN salesmgmt.activity.account_id IS 'Account the communication was with; null only for an activity on a lead not converted yet, or for coaching.';
COMMENT ON COLUMN salesmgmt.activity.contact_id IS 'Contact spoken to, if known.';
COMMENT ON COLUMN salesmgmt.activity.deal_id IS 'Deal the communication was about, if any.';
COMMENT ON COLUMN salesmgmt.activity.rep_id IS 'Rep who communicated.';
COMMENT ON COLUMN salesmgmt.activity.occurred_at IS 'When it happened.';
COMMENT ON COLUMN salesmgmt.activity.duration IS 'How long it took (calls, meetings, visits).';
COMMENT ON COLUMN salesmgmt.activity.outcome IS 'Result, free text (e.g. interested, no answer).';
COMMENT ON COLUMN salesmgmt.activity.notes IS 'Notes taken.';
COMMENT ON COLUMN salesmgmt.activity.lead_id IS 'Lead the communication was with (kept after conversion, when account_id and contact_id are filled in).';
COMMENT ON COLUMN salesmgmt.activity.kpi_id IS 'For coaching: the KPI the session addresses (required for coaching, null for every other kind).';
COMMENT ON COLUMN salesmgmt.activity.deal_owner_rep_id IS 'Owner of the deal (null without a deal), a copy of deal.owner_rep_id kept by the triggers activity_deal_owner_insert, activity_deal_owner_update and deal_owner_cascade (row-level security reads it instead of looking the deal up); not written by hand.';

-- ---------------------------------------------------------------------------
-- Sales targets and the sales plan
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.quota (
    quota_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id          bigint REFERENCES salesmgmt.rep (rep_id),
    team_id         bigint REFERENCES salesmgmt.team (team_id),
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    amount          numeric(18,2) NOT NULL
                    CONSTRAINT quota_amount_nonnegative CHECK (amount >= 0),
    currency        char(3) NOT NULL DEFAULT 'USD' REFERENCES salesmgmt.currency (code),
    product_family  text
                    CONSTRAINT quota_product_family_not_blank CHECK (btrim(product_family) <> ''),
    measure         text NOT NULL DEFAULT 'booked'
                    CONSTRAINT quota_measure_valid CHECK (measure IN ('booked', 'new_arr')),
    CONSTRAINT quota_rep_or_team CHECK ((rep_id IS NULL) <> (team_id IS NULL)),
    CONSTRAINT quota_period_order CHECK (period_end >= period_start),
    CONSTRAINT quota_unique_period UNIQUE NULLS NOT DISTINCT (rep_id, team_id, period_start, period_end, product_family, measure)
);
CREATE INDEX ON salesmgmt.quota (rep_id, period_start);
CREATE INDEX ON salesmgmt.quota (team_id, period_start);
CREATE INDEX ON salesmgmt.quota (currency);
COMMENT ON TABLE salesmgmt.quota IS 'Sales targets: an amount a rep or a team should win in a period (inclusive dates).';
COMMENT ON COLUMN salesmgmt.quota.quota_id IS 'Identity of the quota.';
COMMENT ON COLUMN salesmgmt.quota.rep_id IS 'Rep the target is for (exactly one of rep_id and team_id is set).';
COMMENT ON COLUMN salesmgmt.quota.team_id IS 'Team the target is for (exactly one of rep_id and team_id is set).';
COMMENT ON COLUMN salesmgmt.quota.period_start IS 'First day of the period.';
COMMENT ON COLUMN salesmgmt.quota.period_end IS 'Last day of the period (inclusive).';
COMMENT ON COLUMN salesmgmt.quota.amount IS 'Target amount in currency.';
COMMENT ON COLUMN salesmgmt.quota.currency IS 'ISO 4217 currency of amount.';
COMMENT ON COLUMN salesmgmt.quota.product_family IS 'Product family the target is for (product.family): only that family''s share of each deal counts toward it; null for all products.';
COMMENT ON COLUMN salesmgmt.quota.measure IS 'What counts toward the target: booked (the credited amount of won deals) or new_arr (the new ARR of won deals: new plus expansion, net of contraction, from the subscription versions the deals made; deal_new_arr).';

-- The share of a deal that counts toward a quota of a product family.
-- PL/pgSQL: its body is checked when it runs, and the deal lines it reads
-- are created later in the install script (src/product.sql).
CREATE FUNCTION salesmgmt.deal_family_share(p_deal_id bigint, p_family text)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_family IS NULL THEN
        RETURN 1;
    END IF;
    RETURN (SELECT coalesce(sum(l.line_amount) FILTER (WHERE p.family = p_family)
                            / nullif(sum(l.line_amount), 0), 0)
              FROM salesmgmt.deal_line l
              JOIN salesmgmt.product p ON p.product_id = l.product_id
             WHERE l.deal_id = p_deal_id);
END
$$;
COMMENT ON FUNCTION salesmgmt.deal_family_share(bigint, text) IS 'Share (0..1) of a deal''s line amounts that belongs to a product family: what of the deal counts toward a quota of that family (quota.product_family); 1 for a null family (all products), 0 for a deal without lines of it.';

-- The new ARR a won deal brought: what counts toward a new-ARR quota
-- (quota.measure) and a new-ARR commission plan (commission_plan.
-- credit_measure).  PL/pgSQL for the same reason as deal_family_share: the
-- subscription versions it reads are created later (src/subscription.sql).
CREATE FUNCTION salesmgmt.deal_new_arr(p_deal_id bigint, p_currency text DEFAULT NULL,
                                       p_subscription_id bigint DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_currency text;
    v_day date;
BEGIN
    SELECT d.currency, coalesce(d.closed_at::date, current_date) INTO v_currency, v_day
      FROM salesmgmt.deal d WHERE d.deal_id = p_deal_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_currency := coalesce(p_currency, v_currency);
    RETURN (SELECT coalesce(sum(CASE WHEN v.currency = v_currency THEN x.arr
                                     ELSE salesmgmt.convert_amount(x.arr, v.currency, v_currency, v_day) END), 0)
              FROM salesmgmt.subscription_version v
              CROSS JOIN LATERAL (
                    SELECT 12 * (v.mrr - coalesce((SELECT p.mrr FROM salesmgmt.subscription_version p
                                                    WHERE p.subscription_id = v.subscription_id
                                                      AND p.version = v.version - 1), 0)) AS arr) x
             WHERE v.deal_id = p_deal_id
               AND v.kind IN ('new', 'expansion', 'contraction')
               AND (p_subscription_id IS NULL OR v.subscription_id = p_subscription_id));
END
$$;
COMMENT ON FUNCTION salesmgmt.deal_new_arr(bigint, text, bigint) IS 'New ARR of a deal: 12 times the MRR change of every subscription version the deal made of kind new, expansion or contraction (contraction negative; renewals, reactivations and cancellations do not count), converted from the subscription''s currency into p_currency (null: the deal''s currency) at the deal''s close date; only the versions of subscription p_subscription_id when it is given. 0 for a deal without such versions, null for an unknown deal.';

CREATE TABLE salesmgmt.sales_task (
    task_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    assigned_by     bigint REFERENCES salesmgmt.rep (rep_id),
    account_id      bigint REFERENCES salesmgmt.account (account_id),
    deal_id         bigint REFERENCES salesmgmt.deal (deal_id),
    title           text NOT NULL
                    CONSTRAINT sales_task_title_not_blank CHECK (btrim(title) <> ''),
    description     text,
    due_date        date,
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT sales_task_status_valid CHECK (status IN ('open', 'done', 'cancelled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    CONSTRAINT sales_task_completed_when_done CHECK ((status = 'done') = (completed_at IS NOT NULL)),
    stage_id        bigint REFERENCES salesmgmt.stage (stage_id),
    template_id     bigint,
    required        boolean NOT NULL DEFAULT false,
    lead_id         bigint
);
CREATE INDEX ON salesmgmt.sales_task (rep_id, status);
CREATE INDEX ON salesmgmt.sales_task (assigned_by);
CREATE INDEX ON salesmgmt.sales_task (account_id);
CREATE INDEX ON salesmgmt.sales_task (deal_id);
COMMENT ON TABLE salesmgmt.sales_task IS 'The sales plan: tasks a manager assigns to a rep about an account or a deal, tracked to completion.';
COMMENT ON COLUMN salesmgmt.sales_task.task_id IS 'Identity of the task.';
COMMENT ON COLUMN salesmgmt.sales_task.rep_id IS 'Rep the task is assigned to.';
COMMENT ON COLUMN salesmgmt.sales_task.assigned_by IS 'Rep (usually a manager) who assigned it.';
COMMENT ON COLUMN salesmgmt.sales_task.account_id IS 'Account the task is about, if any.';
COMMENT ON COLUMN salesmgmt.sales_task.deal_id IS 'Deal the task is about, if any.';
COMMENT ON COLUMN salesmgmt.sales_task.title IS 'What is to be done.';
COMMENT ON COLUMN salesmgmt.sales_task.description IS 'Details, strategy and resources for the task.';
COMMENT ON COLUMN salesmgmt.sales_task.due_date IS 'When it is due.';
COMMENT ON COLUMN salesmgmt.sales_task.status IS 'open, done or cancelled.';
COMMENT ON COLUMN salesmgmt.sales_task.created_at IS 'When it was assigned.';
COMMENT ON COLUMN salesmgmt.sales_task.completed_at IS 'When it was done; set exactly when status is done.';
COMMENT ON COLUMN salesmgmt.sales_task.stage_id IS 'For a stage task: the stage of the deal whose checklist it is on (created from salesmgmt.stage_task_template when the deal entered it).';
COMMENT ON COLUMN salesmgmt.sales_task.template_id IS 'For a stage task: the template it was created from (null once the template is deleted).';
COMMENT ON COLUMN salesmgmt.sales_task.required IS 'True when the deal may not move forward from stage_id while this task is open.';
COMMENT ON COLUMN salesmgmt.sales_task.lead_id IS 'Lead the task is about, if any (moves to the account on conversion).';

-- ---------------------------------------------------------------------------
-- pg_dump keeps the user's data: every table the user fills and its
-- identity sequence is an extension configuration object.
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt._register_config_table(p_table regclass, p_filter text DEFAULT '')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seq text;
BEGIN
    PERFORM pg_catalog.pg_extension_config_dump(p_table, p_filter);
    FOR v_seq IN
        SELECT pg_catalog.pg_get_serial_sequence(p_table::text, a.attname)
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_table AND a.attidentity <> '' AND NOT a.attisdropped
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(v_seq::regclass, '');
    END LOOP;
END
$$;
COMMENT ON FUNCTION salesmgmt._register_config_table(regclass, text) IS 'Internal: marks a table and its identity sequences as extension configuration so pg_dump keeps their contents.';

SELECT salesmgmt._register_config_table('salesmgmt.currency', 'WHERE NOT builtin');
SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.currency_rate', 'salesmgmt.team', 'salesmgmt.rep', 'salesmgmt.account',
    'salesmgmt.contact', 'salesmgmt.pipeline', 'salesmgmt.stage', 'salesmgmt.deal',
    'salesmgmt.deal_split', 'salesmgmt.payment', 'salesmgmt.activity', 'salesmgmt.quota',
    'salesmgmt.sales_task']) AS t;
