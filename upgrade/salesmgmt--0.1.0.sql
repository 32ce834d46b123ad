-- ===== src/core.sql =====
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
CREATE FUNCTION salesmgmt.convert_amount(p_amount numeric, p_from char(3), p_to char(3), p_on date)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rate numeric;
BEGIN
    IF p_amount IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_from IS NULL OR p_to IS NULL OR p_on IS NULL THEN
        RAISE EXCEPTION 'currencies and date of a conversion must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF p_from = p_to THEN
        RETURN p_amount;
    END IF;
    SELECT r.rate INTO v_rate
      FROM salesmgmt.currency_rate r
     WHERE r.currency = p_from AND r.quote_currency = p_to AND r.valid_from <= p_on
     ORDER BY r.valid_from DESC LIMIT 1;
    IF v_rate IS NOT NULL THEN
        RETURN p_amount * v_rate;
    END IF;
    -- the reverse pair: divide rather than multiply by a rounded inverse
    SELECT r.rate INTO v_rate
      FROM salesmgmt.currency_rate r
     WHERE r.currency = p_to AND r.quote_currency = p_from AND r.valid_from <= p_on
     ORDER BY r.valid_from DESC LIMIT 1;
    IF v_rate IS NULL THEN
        RAISE EXCEPTION 'no exchange rate from % to % on %', p_from, p_to, p_on
            USING ERRCODE = '22023',
                  DETAIL = 'salesmgmt.currency_rate has no row for this pair (in either direction) valid on or before that date.',
                  HINT = format('Insert a rate: INSERT INTO salesmgmt.currency_rate (currency, quote_currency, valid_from, rate) VALUES (%L, %L, %L, ...).', p_from, p_to, p_on);
    END IF;
    RETURN p_amount / v_rate;
END
$$;
COMMENT ON FUNCTION salesmgmt.convert_amount(numeric, char, char, date) IS 'Converts an amount between currencies with the dated rate valid on the given day; raises 22023 naming the pair and date when no rate exists.';

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
                    CONSTRAINT account_extra_is_object CHECK (jsonb_typeof(extra) = 'object')
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
    CONSTRAINT deal_stage_in_pipeline FOREIGN KEY (pipeline_id, stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id)
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

-- ---------------------------------------------------------------------------
-- Communication records
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.activity (
    activity_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL
                CONSTRAINT activity_kind_valid
                CHECK (kind IN ('call', 'email', 'meeting', 'visit', 'demo', 'note')),
    account_id  bigint NOT NULL REFERENCES salesmgmt.account (account_id),
    contact_id  bigint REFERENCES salesmgmt.contact (contact_id),
    deal_id     bigint REFERENCES salesmgmt.deal (deal_id),
    rep_id      bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    duration    interval
                CONSTRAINT activity_duration_nonnegative CHECK (duration >= interval '0'),
    outcome     text,
    notes       text
);
CREATE INDEX ON salesmgmt.activity (account_id, occurred_at);
CREATE INDEX ON salesmgmt.activity (contact_id);
CREATE INDEX ON salesmgmt.activity (deal_id);
CREATE INDEX ON salesmgmt.activity (rep_id, occurred_at);
COMMENT ON TABLE salesmgmt.activity IS 'Communication records with customers: calls, e-mails, meetings, visits, demos and notes.';
COMMENT ON COLUMN salesmgmt.activity.activity_id IS 'Identity of the activity.';
COMMENT ON COLUMN salesmgmt.activity.kind IS 'call, email, meeting, visit, demo or note.';
COMMENT ON COLUMN salesmgmt.activity.account_id IS 'Account the communication was with.';
COMMENT ON COLUMN salesmgmt.activity.contact_id IS 'Contact spoken to, if known.';
COMMENT ON COLUMN salesmgmt.activity.deal_id IS 'Deal the communication was about, if any.';
COMMENT ON COLUMN salesmgmt.activity.rep_id IS 'Rep who communicated.';
COMMENT ON COLUMN salesmgmt.activity.occurred_at IS 'When it happened.';
COMMENT ON COLUMN salesmgmt.activity.duration IS 'How long it took (calls, meetings, visits).';
COMMENT ON COLUMN salesmgmt.activity.outcome IS 'Result, free text (e.g. interested, no answer).';
COMMENT ON COLUMN salesmgmt.activity.notes IS 'Notes taken.';

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
    CONSTRAINT quota_rep_or_team CHECK ((rep_id IS NULL) <> (team_id IS NULL)),
    CONSTRAINT quota_period_order CHECK (period_end >= period_start),
    CONSTRAINT quota_unique_period UNIQUE NULLS NOT DISTINCT (rep_id, team_id, period_start, period_end)
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
    CONSTRAINT sales_task_completed_when_done CHECK ((status = 'done') = (completed_at IS NOT NULL))
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

-- ===== src/pipeline.sql =====
-- pipeline.sql: the sales process.  Allowed stage transitions, and the
-- complete, append-only history of every deal.  The C trigger functions
-- that enforce the process and write the history are in pipeline.c.
-- See docs/pipeline.md.

CREATE TABLE salesmgmt.stage_transition (
    pipeline_id     bigint NOT NULL REFERENCES salesmgmt.pipeline (pipeline_id) ON DELETE CASCADE,
    from_stage_id   bigint NOT NULL,
    to_stage_id     bigint NOT NULL,
    PRIMARY KEY (pipeline_id, from_stage_id, to_stage_id),
    CONSTRAINT stage_transition_from_in_pipeline FOREIGN KEY (pipeline_id, from_stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id) ON DELETE CASCADE,
    CONSTRAINT stage_transition_to_in_pipeline FOREIGN KEY (pipeline_id, to_stage_id)
        REFERENCES salesmgmt.stage (pipeline_id, stage_id) ON DELETE CASCADE,
    CONSTRAINT stage_transition_not_to_itself CHECK (from_stage_id <> to_stage_id)
);
CREATE INDEX ON salesmgmt.stage_transition (pipeline_id, to_stage_id);
COMMENT ON TABLE salesmgmt.stage_transition IS 'Stage moves a pipeline allows explicitly: all of them under the explicit policy, backward moves and reopening of closed deals under the forward policy.';
COMMENT ON COLUMN salesmgmt.stage_transition.pipeline_id IS 'Pipeline the transition belongs to.';
COMMENT ON COLUMN salesmgmt.stage_transition.from_stage_id IS 'Stage a deal moves from.';
COMMENT ON COLUMN salesmgmt.stage_transition.to_stage_id IS 'Stage a deal may move to.';

-- One row per change of a deal's stage, amount, expected close date,
-- probability override or forecast-category override, and one for its
-- creation: the state of the deal after the change, the old values, who
-- and when.  Append-only.  No foreign key to deal: the history of a
-- deleted deal stays.
CREATE TABLE salesmgmt.deal_stage_history (
    deal_id                 bigint NOT NULL,
    history_id              bigint GENERATED ALWAYS AS IDENTITY,
    pipeline_id             bigint NOT NULL,
    from_stage_id           bigint,
    to_stage_id             bigint NOT NULL,
    owner_rep_id            bigint NOT NULL,
    old_amount              numeric(18,2),
    new_amount              numeric(18,2) NOT NULL,
    currency                char(3) NOT NULL,
    old_expected_close_date date,
    new_expected_close_date date,
    probability             numeric(5,4),
    forecast_category       text,
    effective_probability   numeric(5,4) NOT NULL,
    effective_category      text NOT NULL,
    changed_at              timestamptz NOT NULL,
    changed_by              name NOT NULL DEFAULT current_user,
    time_in_previous_stage  interval,
    note                    text,
    PRIMARY KEY (deal_id, history_id)
);
CREATE INDEX ON salesmgmt.deal_stage_history (changed_at);
CREATE INDEX ON salesmgmt.deal_stage_history (pipeline_id, to_stage_id);
COMMENT ON TABLE salesmgmt.deal_stage_history IS 'Append-only history of every deal: one row at creation and one per change of stage, amount, close date, probability or forecast category, holding the deal''s state after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.deal_id IS 'Deal that changed (the history stays if the deal is deleted).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.history_id IS 'Increasing identity; orders the changes of a deal.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.pipeline_id IS 'Pipeline of the deal after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.from_stage_id IS 'Stage before the change; null for the creation row.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.to_stage_id IS 'Stage after the change (equal to from_stage_id when only other fields changed).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.owner_rep_id IS 'Owner of the deal after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.old_amount IS 'Amount before the change; null for the creation row.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.new_amount IS 'Amount after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.currency IS 'Currency of the amounts.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.old_expected_close_date IS 'Expected close date before the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.new_expected_close_date IS 'Expected close date after the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.probability IS 'Per-deal probability override after the change (null: the stage''s).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.forecast_category IS 'Per-deal forecast-category override after the change (null: the stage''s).';
COMMENT ON COLUMN salesmgmt.deal_stage_history.effective_probability IS 'Probability in force after the change: the override, else the stage''s; 1 when won, 0 when lost.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.effective_category IS 'Forecast category in force after the change: the override, else the stage''s.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.changed_at IS 'When the change took effect.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.changed_by IS 'Database role that made the change.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.time_in_previous_stage IS 'Time the deal spent in from_stage_id, on stage changes.';
COMMENT ON COLUMN salesmgmt.deal_stage_history.note IS 'Note given with the change (salesmgmt.move_deal).';

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.stage_transition', 'salesmgmt.deal_stage_history']) AS t;

-- ---------------------------------------------------------------------------
-- The triggers that enforce the process (pipeline.c)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt._deal_pipeline_rules() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_deal_rules';
COMMENT ON FUNCTION salesmgmt._deal_pipeline_rules() IS 'Internal trigger: checks stage moves of deals (SM001-SM004) and maintains stage_entered_at, closed_at and updated_at.';

CREATE FUNCTION salesmgmt._deal_pipeline_history() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_deal_history';
COMMENT ON FUNCTION salesmgmt._deal_pipeline_history() IS 'Internal trigger: appends the state of a deal after each tracked change to salesmgmt.deal_stage_history.';

CREATE FUNCTION salesmgmt._pipeline_config_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_pipeline_config_changed';
COMMENT ON FUNCTION salesmgmt._pipeline_config_changed() IS 'Internal trigger: tells every session to reload its cached pipeline configuration.';

CREATE FUNCTION salesmgmt._append_only() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_append_only';
COMMENT ON FUNCTION salesmgmt._append_only() IS 'Internal trigger: refuses UPDATE, DELETE and TRUNCATE on an append-only table (history, ledgers).';

CREATE TRIGGER deal_pipeline_rules
    BEFORE INSERT OR UPDATE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._deal_pipeline_rules();
-- History is written per statement from the transition tables: one
-- INSERT for a bulk UPDATE of any size.
CREATE TRIGGER deal_pipeline_history_insert
    AFTER INSERT ON salesmgmt.deal
    REFERENCING NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._deal_pipeline_history();
CREATE TRIGGER deal_pipeline_history_update
    AFTER UPDATE ON salesmgmt.deal
    REFERENCING OLD TABLE AS old_deals NEW TABLE AS new_deals
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._deal_pipeline_history();

CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.pipeline
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();
CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.stage
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();
CREATE TRIGGER pipeline_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.stage_transition
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._pipeline_config_changed();

CREATE TRIGGER deal_stage_history_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.deal_stage_history
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._append_only();

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

-- create_pipeline: one call creates a pipeline and its ordered stages.
-- Every stage is a JSON object; unknown keys, wrong types and impossible
-- values are refused with 22023 before anything is written.
CREATE FUNCTION salesmgmt.create_pipeline(p_name text, p_stages jsonb, p_policy text DEFAULT 'forward')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keys constant text[] := ARRAY['name', 'probability', 'forecast_category', 'outcome',
                                    'required_fields', 'entry_roles', 'max_days_in_stage'];
    v_pipeline bigint;
    v_stage jsonb;
    v_pos integer;
    v_key text;
    v_name text;
    v_outcome text;
    v_names text[] := '{}';
    v_open integer := 0;
    v_role text;
BEGIN
    IF p_name IS NULL OR p_stages IS NULL OR p_policy IS NULL THEN
        RAISE EXCEPTION 'name, stages and policy of a pipeline must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(p_name) = '' THEN
        RAISE EXCEPTION 'the name of a pipeline must not be blank' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_policy NOT IN ('free', 'forward', 'explicit') THEN
        RAISE EXCEPTION 'unknown transition policy "%"', p_policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use free (any move), forward (later stages, won or lost) or explicit (only moves listed in salesmgmt.stage_transition).';
    END IF;
    IF jsonb_typeof(p_stages) <> 'array' OR jsonb_array_length(p_stages) = 0 THEN
        RAISE EXCEPTION 'stages must be a non-empty JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example [{"name": "Qualify", "probability": 0.1}, {"name": "Won", "outcome": "won"}].';
    END IF;

    -- validate everything first: a refused call writes nothing
    FOR v_stage, v_pos IN SELECT e, o::integer FROM jsonb_array_elements(p_stages) WITH ORDINALITY AS t(e, o) LOOP
        IF jsonb_typeof(v_stage) <> 'object' THEN
            RAISE EXCEPTION 'stage % is not a JSON object', v_pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR v_key IN SELECT jsonb_object_keys(v_stage) LOOP
            IF NOT v_key = ANY (v_keys) THEN
                RAISE EXCEPTION 'stage %: unknown key "%"', v_pos, v_key
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Known keys: ' || array_to_string(v_keys, ', ') || '.';
            END IF;
        END LOOP;
        IF jsonb_typeof(v_stage -> 'name') IS DISTINCT FROM 'string' OR btrim(v_stage ->> 'name') = '' THEN
            RAISE EXCEPTION 'stage % needs a non-blank "name" string', v_pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_name := v_stage ->> 'name';
        IF v_name = ANY (v_names) THEN
            RAISE EXCEPTION 'stage name "%" appears twice', v_name USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_names := v_names || v_name;
        v_outcome := coalesce(v_stage ->> 'outcome', 'open');
        IF v_outcome NOT IN ('open', 'won', 'lost') THEN
            RAISE EXCEPTION 'stage "%": outcome must be open, won or lost, not "%"', v_name, v_outcome
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_outcome = 'open' THEN
            v_open := v_open + 1;
            IF NOT v_stage ? 'probability' THEN
                RAISE EXCEPTION 'open stage "%" needs a "probability"', v_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'The probability (0..1) that a deal in this stage is won.';
            END IF;
        END IF;
        IF v_stage ? 'probability' AND (jsonb_typeof(v_stage -> 'probability') <> 'number'
                                        OR (v_stage ->> 'probability')::numeric NOT BETWEEN 0 AND 1) THEN
            RAISE EXCEPTION 'stage "%": probability must be a number between 0 and 1', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_stage ? 'forecast_category' AND jsonb_typeof(v_stage -> 'forecast_category') <> 'string' THEN
            RAISE EXCEPTION 'stage "%": forecast_category must be a string', v_name USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_stage ? 'max_days_in_stage' AND v_stage -> 'max_days_in_stage' <> 'null'
           AND (jsonb_typeof(v_stage -> 'max_days_in_stage') <> 'number'
                OR (v_stage ->> 'max_days_in_stage')::numeric <> trunc((v_stage ->> 'max_days_in_stage')::numeric)
                OR (v_stage ->> 'max_days_in_stage')::numeric NOT BETWEEN 1 AND 36500) THEN
            RAISE EXCEPTION 'stage "%": max_days_in_stage must be a whole number of days (1 to 36500)', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOREACH v_key IN ARRAY ARRAY['required_fields', 'entry_roles'] LOOP
            IF v_stage ? v_key AND v_stage -> v_key <> 'null' AND (
                   jsonb_typeof(v_stage -> v_key) <> 'array'
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_stage -> v_key) AS e
                               WHERE jsonb_typeof(e) <> 'string' OR btrim(e #>> '{}') = '')) THEN
                RAISE EXCEPTION 'stage "%": % must be an array of non-blank strings', v_name, v_key
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END LOOP;
        FOR v_role IN SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(v_stage -> 'entry_roles') = 'array'
                                                            THEN v_stage -> 'entry_roles' ELSE '[]' END) LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
                RAISE EXCEPTION 'stage "%": role "%" does not exist', v_name, v_role
                    USING ERRCODE = 'undefined_object',
                          HINT = 'Create the role first, or leave it out of entry_roles.';
            END IF;
        END LOOP;
    END LOOP;
    IF v_open = 0 THEN
        RAISE EXCEPTION 'a pipeline needs at least one open stage' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO salesmgmt.pipeline (name, transition_policy) VALUES (p_name, p_policy)
        RETURNING pipeline_id INTO v_pipeline;
    INSERT INTO salesmgmt.stage (pipeline_id, name, position, probability, forecast_category, outcome,
                                 required_fields, entry_roles, max_days_in_stage)
    SELECT v_pipeline, e ->> 'name', o::integer,
           coalesce((e ->> 'probability')::numeric,
                    CASE coalesce(e ->> 'outcome', 'open') WHEN 'won' THEN 1 ELSE 0 END),
           coalesce(e ->> 'forecast_category',
                    CASE coalesce(e ->> 'outcome', 'open') WHEN 'won' THEN 'closed'
                                                           WHEN 'lost' THEN 'omitted' ELSE 'pipeline' END),
           coalesce(e ->> 'outcome', 'open'),
           CASE WHEN jsonb_typeof(e -> 'required_fields') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(e -> 'required_fields')) END,
           CASE WHEN jsonb_typeof(e -> 'entry_roles') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(e -> 'entry_roles'))::name[] END,
           (e ->> 'max_days_in_stage')::integer
      FROM jsonb_array_elements(p_stages) WITH ORDINALITY AS t(e, o);
    RETURN v_pipeline;
END
$$;
COMMENT ON FUNCTION salesmgmt.create_pipeline(text, jsonb, text) IS 'Creates a pipeline and its stages in order from a JSON array of stage objects (name, probability, forecast_category, outcome, required_fields, entry_roles, max_days_in_stage); returns the pipeline id.';

CREATE FUNCTION salesmgmt.move_deal(p_deal_id bigint, p_stage text, p_note text DEFAULT NULL)
RETURNS salesmgmt.deal
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sm_move_deal';
COMMENT ON FUNCTION salesmgmt.move_deal(bigint, text, text) IS 'Moves a deal to the named stage of its own pipeline under the same rules as an UPDATE (SM001-SM004); the note is recorded in the history row. Returns the deal after the move.';

CREATE FUNCTION salesmgmt._allowed_next_stage_ids(p_deal_id bigint)
RETURNS bigint[]
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'sm_allowed_next_stage_ids';
COMMENT ON FUNCTION salesmgmt._allowed_next_stage_ids(bigint) IS 'Internal: ids of the stages salesmgmt.allowed_next_stages returns.';

CREATE FUNCTION salesmgmt.allowed_next_stages(p_deal_id bigint)
RETURNS SETOF salesmgmt.stage
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM salesmgmt.stage s
     WHERE s.stage_id = ANY (salesmgmt._allowed_next_stage_ids(p_deal_id))
     ORDER BY s.position
$$;
COMMENT ON FUNCTION salesmgmt.allowed_next_stages(bigint) IS 'Stages the deal may move to now, in order: allowed by the pipeline''s policy and transitions and open to the current role (stage gates are checked when moving).';

-- ---------------------------------------------------------------------------
-- Views for BI.  security_invoker: a reader sees only the deals row-level
-- security lets them see.
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.pipeline_board WITH (security_invoker = true) AS
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       s.probability AS stage_probability,
       d.currency,
       count(d.deal_id) AS open_deals,
       coalesce(sum(d.amount), 0)::numeric(18,2) AS amount,
       coalesce(round(sum(d.amount * coalesce(d.probability, s.probability)), 2), 0)::numeric(18,2) AS weighted_amount
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN salesmgmt.deal d ON d.stage_id = s.stage_id
 WHERE s.outcome = 'open'
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position, s.probability, d.currency;
COMMENT ON VIEW salesmgmt.pipeline_board IS 'The pipeline board: per pipeline, open stage and currency, the open deals, their amount and their weighted amount (amount x effective probability). A stage without deals has one row with currency null and zeros.';
COMMENT ON COLUMN salesmgmt.pipeline_board.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.pipeline_board.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage_id IS 'Open stage.';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.pipeline_board.position IS 'Position of the stage in its pipeline (order the board by it).';
COMMENT ON COLUMN salesmgmt.pipeline_board.stage_probability IS 'The stage''s probability (deals may override it).';
COMMENT ON COLUMN salesmgmt.pipeline_board.currency IS 'Currency of the amounts on this row (amounts are never summed across currencies); null for a stage without deals.';
COMMENT ON COLUMN salesmgmt.pipeline_board.open_deals IS 'Number of deals in the stage.';
COMMENT ON COLUMN salesmgmt.pipeline_board.amount IS 'Sum of their amounts.';
COMMENT ON COLUMN salesmgmt.pipeline_board.weighted_amount IS 'Sum of amount x effective probability (the deal''s override, else the stage''s), rounded to cents.';

CREATE VIEW salesmgmt.stage_funnel WITH (security_invoker = true) AS
WITH reached AS (
    SELECT DISTINCT h.deal_id, h.to_stage_id AS stage_id
      FROM salesmgmt.deal_stage_history h
), per_deal AS (
    SELECT r.deal_id,
           max(s.position) FILTER (WHERE s.outcome <> 'lost') AS furthest,
           bool_or(s.outcome = 'won') AS won
      FROM reached r JOIN salesmgmt.stage s ON s.stage_id = r.stage_id
     GROUP BY r.deal_id
)
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       s.outcome,
       count(r.deal_id) AS deals_reached,
       CASE WHEN s.outcome = 'open'
            THEN round(count(r.deal_id) FILTER (WHERE d.furthest > s.position)::numeric
                       / nullif(count(r.deal_id), 0), 4) END AS next_stage_share,
       round(count(r.deal_id) FILTER (WHERE d.won)::numeric / nullif(count(r.deal_id), 0), 4) AS won_share
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN reached r ON r.stage_id = s.stage_id
  LEFT JOIN per_deal d ON d.deal_id = r.deal_id
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position, s.outcome;
COMMENT ON VIEW salesmgmt.stage_funnel IS 'The funnel, computed from the stage history: per pipeline and stage, how many deals ever reached it, the share of those that went on to a later stage, and the share that were won.';
COMMENT ON COLUMN salesmgmt.stage_funnel.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.stage_funnel.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stage_funnel.stage_id IS 'Stage.';
COMMENT ON COLUMN salesmgmt.stage_funnel.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stage_funnel.position IS 'Position of the stage in its pipeline.';
COMMENT ON COLUMN salesmgmt.stage_funnel.outcome IS 'open, won or lost.';
COMMENT ON COLUMN salesmgmt.stage_funnel.deals_reached IS 'Deals whose history shows them in this stage at some time (created in it or moved into it).';
COMMENT ON COLUMN salesmgmt.stage_funnel.next_stage_share IS 'Of those, the share (0..1) that later reached a stage further on (higher position) that is not a lost stage; null for won and lost stages and when no deal reached the stage.';
COMMENT ON COLUMN salesmgmt.stage_funnel.won_share IS 'Of those, the share (0..1) that reached a won stage.';

CREATE VIEW salesmgmt.stage_durations WITH (security_invoker = true) AS
WITH stays AS (
    SELECT h.from_stage_id AS stage_id, h.time_in_previous_stage AS stay
      FROM salesmgmt.deal_stage_history h
     WHERE h.from_stage_id <> h.to_stage_id AND h.time_in_previous_stage IS NOT NULL
)
SELECT p.pipeline_id,
       p.name AS pipeline,
       s.stage_id,
       s.name AS stage,
       s.position,
       count(t.stay) AS completed_stays,
       justify_hours(date_trunc('second', avg(t.stay))) AS avg_duration,
       justify_hours(date_trunc('second', make_interval(secs =>
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.stay))))) AS median_duration,
       round(extract(epoch FROM avg(t.stay)) / 86400, 2) AS avg_days,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.stay)) / 86400)::numeric, 2) AS median_days
  FROM salesmgmt.pipeline p
  JOIN salesmgmt.stage s ON s.pipeline_id = p.pipeline_id
  LEFT JOIN stays t ON t.stage_id = s.stage_id
 GROUP BY p.pipeline_id, p.name, s.stage_id, s.name, s.position;
COMMENT ON VIEW salesmgmt.stage_durations IS 'How long deals stay in each stage, from the stage history: average and median over every completed stay (a deal that left the stage), per pipeline and stage.';
COMMENT ON COLUMN salesmgmt.stage_durations.pipeline_id IS 'Pipeline.';
COMMENT ON COLUMN salesmgmt.stage_durations.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stage_durations.stage_id IS 'Stage.';
COMMENT ON COLUMN salesmgmt.stage_durations.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stage_durations.position IS 'Position of the stage in its pipeline.';
COMMENT ON COLUMN salesmgmt.stage_durations.completed_stays IS 'Number of times a deal left this stage (deals still in it are not counted).';
COMMENT ON COLUMN salesmgmt.stage_durations.avg_duration IS 'Average time in the stage, to the second; null without completed stays.';
COMMENT ON COLUMN salesmgmt.stage_durations.median_duration IS 'Median time in the stage, to the second; null without completed stays.';
COMMENT ON COLUMN salesmgmt.stage_durations.avg_days IS 'Average time in the stage in days (two decimals), for charts.';
COMMENT ON COLUMN salesmgmt.stage_durations.median_days IS 'Median time in the stage in days (two decimals), for charts.';

CREATE VIEW salesmgmt.stalled_deals WITH (security_invoker = true) AS
SELECT d.deal_id,
       d.name AS deal,
       d.pipeline_id,
       p.name AS pipeline,
       d.stage_id,
       s.name AS stage,
       d.owner_rep_id,
       r.name AS owner,
       d.amount,
       d.currency,
       d.stage_entered_at,
       s.max_days_in_stage,
       floor(extract(epoch FROM now() - d.stage_entered_at) / 86400)::integer AS days_in_stage,
       floor(extract(epoch FROM now() - d.stage_entered_at) / 86400)::integer - s.max_days_in_stage AS days_over
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
  JOIN salesmgmt.pipeline p ON p.pipeline_id = d.pipeline_id
  JOIN salesmgmt.rep r ON r.rep_id = d.owner_rep_id
 WHERE s.outcome = 'open'
   AND s.max_days_in_stage IS NOT NULL
   AND d.stage_entered_at < now() - make_interval(days => s.max_days_in_stage);
COMMENT ON VIEW salesmgmt.stalled_deals IS 'Open deals that have stayed in their stage longer than the stage''s max_days_in_stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.deal_id IS 'Deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.deal IS 'Deal name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.pipeline_id IS 'Pipeline of the deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.pipeline IS 'Pipeline name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage_id IS 'Stage the deal is stuck in.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage IS 'Stage name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.owner_rep_id IS 'Rep who owns the deal.';
COMMENT ON COLUMN salesmgmt.stalled_deals.owner IS 'Owner''s name.';
COMMENT ON COLUMN salesmgmt.stalled_deals.amount IS 'Deal amount.';
COMMENT ON COLUMN salesmgmt.stalled_deals.currency IS 'Currency of the amount.';
COMMENT ON COLUMN salesmgmt.stalled_deals.stage_entered_at IS 'When the deal entered the stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.max_days_in_stage IS 'Days the stage allows.';
COMMENT ON COLUMN salesmgmt.stalled_deals.days_in_stage IS 'Whole days the deal has been in the stage.';
COMMENT ON COLUMN salesmgmt.stalled_deals.days_over IS 'Whole days past the limit (0 in the first day over it).';

-- ===== src/forecast.sql =====
-- forecast.sql: what will we close, who is short of quota, how sure are we,
-- and how good were our past forecasts (data-analysis pillar).  The
-- weighted and category forecasts and the Monte Carlo ranges are computed
-- in C (forecast.c); manager adjustments, snapshots and the accuracy view
-- are plain tables and SQL.  See docs/forecasting.md.

-- ---------------------------------------------------------------------------
-- Manager adjustments: a manager's judgement next to the computed figures
-- ---------------------------------------------------------------------------

-- Each row moves one forecast category of a rep or a team by an amount
-- (positive or negative) for a period.  Adjustments are deltas, so that
-- several of them (and those of several periods inside a longer forecast
-- period) add up; a correction is a new row, never an update.
CREATE TABLE salesmgmt.forecast_adjustment (
    adjustment_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    rep_id          bigint REFERENCES salesmgmt.rep (rep_id),
    team_id         bigint REFERENCES salesmgmt.team (team_id),
    category        text NOT NULL
                    CONSTRAINT forecast_adjustment_category_valid
                    CHECK (category IN ('commit', 'best_case', 'pipeline')),
    amount          numeric(18,2) NOT NULL,
    currency        char(3) NOT NULL
                    DEFAULT coalesce(current_setting('salesmgmt.reporting_currency', true), 'USD')
                    REFERENCES salesmgmt.currency (code),
    note            text,
    adjusted_by     name NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT forecast_adjustment_rep_or_team CHECK ((rep_id IS NULL) <> (team_id IS NULL)),
    CONSTRAINT forecast_adjustment_period_order CHECK (period_end >= period_start),
    CONSTRAINT forecast_adjustment_period_finite
        CHECK (isfinite(period_start) AND isfinite(period_end))
);
CREATE INDEX ON salesmgmt.forecast_adjustment (rep_id);
CREATE INDEX ON salesmgmt.forecast_adjustment (team_id);
CREATE INDEX ON salesmgmt.forecast_adjustment (currency);
CREATE INDEX ON salesmgmt.forecast_adjustment (period_start);
COMMENT ON TABLE salesmgmt.forecast_adjustment IS 'Manager adjustments of a forecast: amounts added to (or, when negative, taken from) one category of a rep''s or a team''s forecast for a period. Append-only; salesmgmt.forecast shows adjusted figures next to the computed ones.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.adjustment_id IS 'Identity of the adjustment.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.period_start IS 'First day of the period adjusted; the adjustment counts in every forecast whose period (or month/quarter bucket) contains its whole period.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.period_end IS 'Last day of the period adjusted (inclusive).';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.rep_id IS 'Rep whose forecast is adjusted (exactly one of rep_id and team_id is set); counts for the rep and every team above.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.team_id IS 'Team whose forecast is adjusted (exactly one of rep_id and team_id is set); counts for the team and every team above, not for its reps.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.category IS 'Forecast category adjusted: commit, best_case or pipeline.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.amount IS 'Amount added to the category (negative to lower it), in currency.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.currency IS 'ISO 4217 currency of amount; converted with the rate valid on period_start. Defaults to the reporting currency.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.note IS 'Why the manager adjusted the forecast.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.adjusted_by IS 'Database role that made the adjustment.';
COMMENT ON COLUMN salesmgmt.forecast_adjustment.created_at IS 'When the adjustment was made; forecasts as of an earlier moment leave it out.';

-- ---------------------------------------------------------------------------
-- The forecast (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.forecast(
    p_from      date,
    p_to        date,
    p_group     text DEFAULT 'rep',
    p_as_of     timestamptz DEFAULT NULL,
    p_currency  char(3) DEFAULT NULL)
RETURNS TABLE (
    group_id                    bigint,
    group_name                  text,
    closed_won                  numeric,
    commit                      numeric,
    best_case                   numeric,
    pipeline                    numeric,
    omitted                     numeric,
    weighted                    numeric,
    commit_forecast             numeric,
    best_case_forecast          numeric,
    quota                       numeric,
    attainment                  numeric,
    gap                         numeric,
    deal_count                  bigint,
    period_start                date,
    period_end                  date,
    adjusted_commit             numeric,
    adjusted_best_case          numeric,
    adjusted_pipeline           numeric,
    adjusted_commit_forecast    numeric,
    adjusted_best_case_forecast numeric,
    adjusted_gap                numeric,
    currency                    char(3))
AS 'MODULE_PATHNAME', 'sm_forecast'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION salesmgmt.forecast(date, date, text, timestamptz, char) IS 'Forecast of the deals whose period (closed_at when closed, else expected close date) lies in [p_from, p_to], per rep, team (with sub-teams), pipeline, month, quarter or in total, in the reporting currency; p_as_of rebuilds it as it stood at a past moment from the deal history.';

CREATE FUNCTION salesmgmt.forecast_range(
    p_from          date,
    p_to            date,
    p_team_id       bigint DEFAULT NULL,
    p_simulations   integer DEFAULT 10000,
    p_seed          bigint DEFAULT 0)
RETURNS TABLE (
    mean            numeric,
    stddev          numeric,
    p10             numeric,
    p50             numeric,
    p90             numeric,
    min             numeric,
    max             numeric,
    simulations     integer,
    closed_won      numeric,
    open_deals      bigint,
    expected        numeric,
    expected_stddev numeric,
    currency        char(3))
AS 'MODULE_PATHNAME', 'sm_forecast_range'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION salesmgmt.forecast_range(date, date, bigint, integer, bigint) IS 'Monte Carlo range of the revenue of [p_from, p_to] for a team (with sub-teams) or everyone: closed-won revenue plus each open deal won with its effective probability, p_simulations times; the same seed gives the same answer.';

-- ---------------------------------------------------------------------------
-- Learned win rates
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.win_rates(
    p_pipeline_id   bigint,
    p_since         date DEFAULT NULL,
    p_as_of         timestamptz DEFAULT NULL)
RETURNS TABLE (
    stage_id                bigint,
    stage_name              text,
    "position"              integer,
    outcome                 text,
    reached                 bigint,
    won                     bigint,
    probability             numeric,
    configured_probability  numeric,
    median_days_to_close    numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF p_pipeline_id IS NULL THEN
        RAISE EXCEPTION 'pipeline must not be null'
            USING ERRCODE = '22004',
                  HINT = 'Pass the pipeline_id of salesmgmt.pipeline whose win rates you want.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.pipeline p WHERE p.pipeline_id = p_pipeline_id) THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_pipeline_id
            USING ERRCODE = '42704',
                  HINT = 'See SELECT pipeline_id, name FROM salesmgmt.pipeline.';
    END IF;
    IF p_since IS NOT NULL AND NOT isfinite(p_since) THEN
        RAISE EXCEPTION 'p_since must be a finite date, not %', p_since
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH entered AS (
        -- when each deal ever in the pipeline first and last entered each
        -- stage, in the history known at p_as_of (all of the deal's rows:
        -- it may have moved on to another pipeline)
        SELECT h.deal_id, h.to_stage_id AS stage_id,
               min(h.changed_at) AS first_at, max(h.changed_at) AS last_at,
               max(h.history_id) AS last_history_id
          FROM salesmgmt.deal_stage_history h
         WHERE (p_as_of IS NULL OR h.changed_at <= p_as_of)
           AND h.from_stage_id IS DISTINCT FROM h.to_stage_id
           AND h.deal_id IN (SELECT x.deal_id FROM salesmgmt.deal_stage_history x
                              WHERE x.pipeline_id = p_pipeline_id)
         GROUP BY h.deal_id, h.to_stage_id
    ), ranked AS (
        -- a deal's final stage is the one it entered last; if that is a
        -- won or lost stage, the deal closed when it last entered it
        SELECT e.deal_id, e.stage_id, e.first_at,
               first_value(e.stage_id) OVER w AS final_stage_id,
               first_value(e.last_at) OVER w AS closed_at
          FROM entered e
        WINDOW w AS (PARTITION BY e.deal_id ORDER BY e.last_history_id DESC)
    ), per_stage AS (
        SELECT r.stage_id, count(*) AS reached, count(*) FILTER (WHERE f.outcome = 'won') AS won,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM r.closed_at - r.first_at) / 86400) AS median_days
          FROM ranked r
          JOIN salesmgmt.stage f ON f.stage_id = r.final_stage_id
         WHERE f.pipeline_id = p_pipeline_id AND f.outcome <> 'open'
           AND (p_since IS NULL OR r.closed_at >= p_since)
         GROUP BY r.stage_id
    )
    SELECT s.stage_id, s.name, s.position, s.outcome,
           coalesce(ps.reached, 0), coalesce(ps.won, 0),
           round(ps.won::numeric / nullif(ps.reached, 0), 4),
           s.probability,
           round(ps.median_days::numeric, 1)
      FROM salesmgmt.stage s
      LEFT JOIN per_stage ps ON ps.stage_id = s.stage_id
     WHERE s.pipeline_id = p_pipeline_id
     ORDER BY s.position;
END
$$;
COMMENT ON FUNCTION salesmgmt.win_rates(bigint, date, timestamptz) IS 'Per stage of a pipeline, learned from the deal history: closed deals that entered the stage, how many of them were won, the learned probability of winning from the stage, and the median days from first entering the stage to close. p_since keeps deals closed on or after that day; p_as_of uses the history known then.';

-- ---------------------------------------------------------------------------
-- Snapshots and accuracy
-- ---------------------------------------------------------------------------

CREATE SEQUENCE salesmgmt.forecast_snapshot_id_seq AS bigint;
COMMENT ON SEQUENCE salesmgmt.forecast_snapshot_id_seq IS 'Numbers the snapshots taken by salesmgmt.snapshot_forecast.';

CREATE TABLE salesmgmt.forecast_snapshot (
    snapshot_id                 bigint NOT NULL,
    line_no                     integer NOT NULL,
    taken_at                    timestamptz NOT NULL DEFAULT now(),
    taken_by                    name NOT NULL DEFAULT current_user,
    period_from                 date NOT NULL,
    period_to                   date NOT NULL,
    group_kind                  text NOT NULL
                                CONSTRAINT forecast_snapshot_group_kind_valid
                                CHECK (group_kind IN ('rep', 'team', 'pipeline', 'month', 'quarter', 'total')),
    group_id                    bigint,
    group_name                  text,
    period_start                date NOT NULL,
    period_end                  date NOT NULL,
    currency                    char(3) NOT NULL,
    closed_won                  numeric NOT NULL,
    commit                      numeric NOT NULL,
    best_case                   numeric NOT NULL,
    pipeline                    numeric NOT NULL,
    omitted                     numeric NOT NULL,
    weighted                    numeric NOT NULL,
    commit_forecast             numeric NOT NULL,
    best_case_forecast          numeric NOT NULL,
    quota                       numeric,
    deal_count                  bigint NOT NULL,
    adjusted_commit_forecast    numeric,
    adjusted_best_case_forecast numeric,
    PRIMARY KEY (snapshot_id, line_no)
);
CREATE INDEX ON salesmgmt.forecast_snapshot (taken_at);
COMMENT ON TABLE salesmgmt.forecast_snapshot IS 'Forecasts as they stood when salesmgmt.snapshot_forecast was called: one row per group of each snapshot. Append-only; salesmgmt.forecast_accuracy compares them with what was won.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.snapshot_id IS 'Snapshot the row belongs to (returned by salesmgmt.snapshot_forecast).';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.line_no IS 'Row of the snapshot, in the order salesmgmt.forecast returned the groups.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.taken_at IS 'When the snapshot was taken.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.taken_by IS 'Database role that took it.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.period_from IS 'p_from of the forecast.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.period_to IS 'p_to of the forecast.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_kind IS 'p_group of the forecast: rep, team, pipeline, month, quarter or total.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_id IS 'group_id of the forecast row (rep, team or pipeline id, yyyymm, yyyyq; null for the total and for reps without a team).';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.group_name IS 'group_name of the forecast row when the snapshot was taken.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.period_start IS 'First day of the row''s period (the month or quarter for those groups, else period_from).';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.period_end IS 'Last day of the row''s period.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.currency IS 'Reporting currency the amounts are in.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.closed_won IS 'Won by then.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.commit IS 'Open deals in the commit category.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.best_case IS 'Open deals in the best_case category.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.pipeline IS 'Open deals in the pipeline category.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.omitted IS 'Open deals in the omitted category.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.weighted IS 'Sum of amount times effective probability over the open deals.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.commit_forecast IS 'closed_won + commit.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.best_case_forecast IS 'commit_forecast + best_case.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.quota IS 'Quota of the group for the period; null when none is set.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.deal_count IS 'Deals counted (won and open).';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.adjusted_commit_forecast IS 'commit_forecast with the managers'' adjustments; null for pipeline groups.';
COMMENT ON COLUMN salesmgmt.forecast_snapshot.adjusted_best_case_forecast IS 'best_case_forecast with the managers'' adjustments; null for pipeline groups.';

CREATE FUNCTION salesmgmt.snapshot_forecast(p_from date, p_to date, p_group text DEFAULT 'rep')
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH id AS (
        SELECT nextval('salesmgmt.forecast_snapshot_id_seq') AS snapshot_id
    ), ins AS (
        INSERT INTO salesmgmt.forecast_snapshot (
            snapshot_id, line_no, period_from, period_to, group_kind, group_id, group_name,
            period_start, period_end, currency, closed_won, commit, best_case, pipeline, omitted,
            weighted, commit_forecast, best_case_forecast, quota, deal_count,
            adjusted_commit_forecast, adjusted_best_case_forecast)
        SELECT id.snapshot_id, f.ordinality::integer, p_from, p_to, p_group, f.group_id, f.group_name,
               f.period_start, f.period_end, f.currency, f.closed_won, f.commit, f.best_case,
               f.pipeline, f.omitted, f.weighted, f.commit_forecast, f.best_case_forecast,
               f.quota, f.deal_count, f.adjusted_commit_forecast, f.adjusted_best_case_forecast
          FROM id, salesmgmt.forecast(p_from, p_to, p_group) WITH ORDINALITY AS f
    )
    SELECT snapshot_id FROM id
$$;
COMMENT ON FUNCTION salesmgmt.snapshot_forecast(date, date, text) IS 'Stores the current forecast of [p_from, p_to] by p_group in salesmgmt.forecast_snapshot and returns the snapshot_id.';

-- Adjustments and snapshots are records of what was believed at a time:
-- never changed, only added to (the pipeline's append-only trigger).
CREATE TRIGGER forecast_adjustment_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.forecast_adjustment
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._append_only();
CREATE TRIGGER forecast_snapshot_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON salesmgmt.forecast_snapshot
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._append_only();

-- Accuracy: each snapshot row next to what has been won in its period and
-- group since (the current forecast's closed_won, in the snapshot's
-- currency).  One forecast per distinct snapshot query, not per row.
CREATE VIEW salesmgmt.forecast_accuracy AS
WITH queries AS (
    SELECT DISTINCT s.period_from, s.period_to, s.group_kind, s.currency
      FROM salesmgmt.forecast_snapshot s
), actual AS (
    SELECT q.period_from, q.period_to, q.group_kind, q.currency,
           f.group_id, f.period_start, f.closed_won
      FROM queries q,
           LATERAL salesmgmt.forecast(q.period_from, q.period_to, q.group_kind, NULL, q.currency) f
), cmp AS (
    SELECT s.*, coalesce(a.closed_won, 0) AS actual
      FROM salesmgmt.forecast_snapshot s
      LEFT JOIN actual a
        ON a.period_from = s.period_from AND a.period_to = s.period_to
       AND a.group_kind = s.group_kind AND a.currency = s.currency
       AND a.group_id IS NOT DISTINCT FROM s.group_id
       AND a.period_start = s.period_start
)
SELECT c.snapshot_id, c.line_no, c.taken_at, c.group_kind, c.group_id, c.group_name,
       c.period_start, c.period_end, c.currency,
       c.commit_forecast AS forecast,
       c.actual,
       c.actual - c.commit_forecast AS error,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - c.commit_forecast) / c.actual), 4) END AS accuracy,
       c.closed_won + c.weighted AS weighted_forecast,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - (c.closed_won + c.weighted)) / c.actual), 4) END AS weighted_accuracy,
       c.adjusted_commit_forecast AS adjusted_forecast,
       CASE WHEN c.actual <> 0
            THEN round(greatest(0, 1 - abs(c.actual - c.adjusted_commit_forecast) / c.actual), 4) END AS adjusted_accuracy,
       c.period_end < current_date AS period_complete
  FROM cmp c;
COMMENT ON VIEW salesmgmt.forecast_accuracy IS 'Each forecast snapshot row compared with what has actually been won in its period and group: accuracy = max(0, 1 - |actual - forecast| / actual), null while nothing is won.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.snapshot_id IS 'Snapshot compared.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.line_no IS 'Row of the snapshot.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.taken_at IS 'When the snapshot was taken.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.group_kind IS 'rep, team, pipeline, month, quarter or total.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.group_id IS 'Group of the row (see salesmgmt.forecast).';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.group_name IS 'Group name when the snapshot was taken.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.period_start IS 'First day of the row''s period.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.period_end IS 'Last day of the row''s period.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.currency IS 'Currency of the amounts.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.forecast IS 'Commit forecast (closed_won + commit) at the snapshot.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.actual IS 'Won in the period and group now (current closed_won).';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.error IS 'actual - forecast: positive when more was won than forecast.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.accuracy IS 'max(0, 1 - |actual - forecast| / actual), 4 decimals; null while actual is 0.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.weighted_forecast IS 'closed_won + weighted at the snapshot.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.weighted_accuracy IS 'Accuracy of weighted_forecast, same formula.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.adjusted_forecast IS 'Commit forecast with the managers'' adjustments at the snapshot.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.adjusted_accuracy IS 'Accuracy of adjusted_forecast, same formula.';
COMMENT ON COLUMN salesmgmt.forecast_accuracy.period_complete IS 'True once the period has ended (before today), so actual is final unless deals are reopened.';

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.forecast_adjustment', 'salesmgmt.forecast_snapshot']) AS t;
SELECT pg_catalog.pg_extension_config_dump('salesmgmt.forecast_snapshot_id_seq', '');

-- ===== src/commission.sql =====
-- commission.sql: the material-incentive part of the training-and-incentives
-- pillar.  Commission plans (tiers, accelerators and decelerators, caps,
-- SPIFFs, manager overrides, clawback windows), plan assignments, draws,
-- commission periods and the append-only ledger of commission lines.  The
-- computation (salesmgmt.run_commissions and friends) and the triggers that
-- guard the ledger are in commission.c.  See docs/commissions.md.

-- ---------------------------------------------------------------------------
-- Plans
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.commission_plan (
    plan_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CONSTRAINT commission_plan_name_not_blank CHECK (btrim(name) <> ''),
    basis           text NOT NULL DEFAULT 'booking'
                    CONSTRAINT commission_plan_basis_valid CHECK (basis IN ('booking', 'payment')),
    period          text NOT NULL DEFAULT 'quarter'
                    CONSTRAINT commission_plan_period_valid CHECK (period IN ('month', 'quarter', 'year')),
    tier_mode       text NOT NULL DEFAULT 'marginal'
                    CONSTRAINT commission_plan_tier_mode_valid CHECK (tier_mode IN ('marginal', 'retroactive')),
    cap             numeric(18,2)
                    CONSTRAINT commission_plan_cap_nonnegative CHECK (cap >= 0),
    clawback_days   integer
                    CONSTRAINT commission_plan_clawback_days_nonnegative CHECK (clawback_days >= 0),
    override_rate   numeric
                    CONSTRAINT commission_plan_override_rate_range CHECK (override_rate >= 0 AND override_rate <= 1),
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commission_plan_name_unique UNIQUE (name)
);
COMMENT ON TABLE salesmgmt.commission_plan IS 'Commission plans: how credit is earned (basis), over which period attainment is measured, how tiers apply, the cap, the clawback window and the manager override rate.';
COMMENT ON COLUMN salesmgmt.commission_plan.plan_id IS 'Identity of the plan.';
COMMENT ON COLUMN salesmgmt.commission_plan.name IS 'Unique plan name.';
COMMENT ON COLUMN salesmgmt.commission_plan.basis IS 'booking: a deal is credited when it is won (deal.closed_at); payment: credit when money arrives (salesmgmt.payment), refunds reverse it.';
COMMENT ON COLUMN salesmgmt.commission_plan.period IS 'month, quarter or year: the calendar period over which quota attainment accumulates and the cap applies.';
COMMENT ON COLUMN salesmgmt.commission_plan.tier_mode IS 'Default tier mode: marginal (each slice of credit earns the rate of the tier it falls in) or retroactive (once a tier is reached, all credit of the period earns its rate; the catch-up is paid in the line that crossed it). A tier may override it.';
COMMENT ON COLUMN salesmgmt.commission_plan.cap IS 'Most that the tiers may pay a rep per plan period, in the reporting currency; null for no cap. SPIFFs, overrides and draws are outside the cap.';
COMMENT ON COLUMN salesmgmt.commission_plan.clawback_days IS 'Clawback window: commission on a deal that is reopened, lost or refunded within this many days of being won is clawed back; null or 0 for no clawbacks. Applies to booking-basis plans.';
COMMENT ON COLUMN salesmgmt.commission_plan.override_rate IS 'Manager override: a rep on this plan who manages a team earns this fraction of the credit of everyone below them in the team tree; null for none.';
COMMENT ON COLUMN salesmgmt.commission_plan.description IS 'Free text describing the plan for reps.';
COMMENT ON COLUMN salesmgmt.commission_plan.created_at IS 'When the plan was created.';

CREATE TABLE salesmgmt.commission_tier (
    tier_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    plan_id         bigint NOT NULL REFERENCES salesmgmt.commission_plan (plan_id) ON DELETE CASCADE,
    attainment_from numeric NOT NULL
                    CONSTRAINT commission_tier_from_nonnegative CHECK (attainment_from >= 0),
    attainment_to   numeric
                    CONSTRAINT commission_tier_range_order CHECK (attainment_to > attainment_from),
    rate            numeric NOT NULL
                    CONSTRAINT commission_tier_rate_nonnegative CHECK (rate >= 0),
    mode            text
                    CONSTRAINT commission_tier_mode_valid CHECK (mode IN ('marginal', 'retroactive'))
);
CREATE INDEX ON salesmgmt.commission_tier (plan_id, attainment_from);
COMMENT ON TABLE salesmgmt.commission_tier IS 'Rate tiers of a plan by quota attainment. The tiers of a plan start at 0, leave no gap and do not overlap, and only the highest is open-ended; checked at commit, so tiers can be entered one by one.';
COMMENT ON COLUMN salesmgmt.commission_tier.tier_id IS 'Identity of the tier.';
COMMENT ON COLUMN salesmgmt.commission_tier.plan_id IS 'Plan the tier belongs to.';
COMMENT ON COLUMN salesmgmt.commission_tier.attainment_from IS 'Attainment (fraction of quota, e.g. 0.5 for 50%) where the tier starts, inclusive.';
COMMENT ON COLUMN salesmgmt.commission_tier.attainment_to IS 'Attainment where the tier ends, exclusive; null for the open-ended top tier.';
COMMENT ON COLUMN salesmgmt.commission_tier.rate IS 'Commission rate as a fraction of credit (0.05 for 5%); never negative.';
COMMENT ON COLUMN salesmgmt.commission_tier.mode IS 'marginal or retroactive for this tier; null uses the plan''s tier_mode.';

CREATE TABLE salesmgmt.commission_spiff (
    spiff_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    plan_id         bigint NOT NULL REFERENCES salesmgmt.commission_plan (plan_id) ON DELETE CASCADE,
    name            text NOT NULL
                    CONSTRAINT commission_spiff_name_not_blank CHECK (btrim(name) <> ''),
    condition       jsonb NOT NULL DEFAULT '{}'
                    CONSTRAINT commission_spiff_condition_is_object CHECK (jsonb_typeof(condition) = 'object'),
    amount          numeric(18,2)
                    CONSTRAINT commission_spiff_amount_positive CHECK (amount > 0),
    rate            numeric
                    CONSTRAINT commission_spiff_rate_positive CHECK (rate > 0),
    valid_from      date,
    valid_to        date,
    CONSTRAINT commission_spiff_amount_or_rate CHECK ((amount IS NULL) <> (rate IS NULL)),
    CONSTRAINT commission_spiff_valid_order CHECK (valid_to >= valid_from),
    CONSTRAINT commission_spiff_name_unique UNIQUE (plan_id, name)
);
COMMENT ON TABLE salesmgmt.commission_spiff IS 'SPIFFs: bonuses a plan pays on deals that match a condition, a flat amount per deal or a rate on its credit, during a validity window.';
COMMENT ON COLUMN salesmgmt.commission_spiff.spiff_id IS 'Identity of the SPIFF.';
COMMENT ON COLUMN salesmgmt.commission_spiff.plan_id IS 'Plan whose reps earn the SPIFF.';
COMMENT ON COLUMN salesmgmt.commission_spiff.name IS 'Name, unique within the plan.';
COMMENT ON COLUMN salesmgmt.commission_spiff.condition IS 'JSON object the deal must contain, matched against the deal''s columns and extra, e.g. {"extra": {"product": "analytics"}} or {"pipeline_id": 2}; {} matches every deal. Keys must be deal columns.';
COMMENT ON COLUMN salesmgmt.commission_spiff.amount IS 'Flat bonus per matching deal, times the rep''s split share (reporting currency); exactly one of amount and rate is set.';
COMMENT ON COLUMN salesmgmt.commission_spiff.rate IS 'Bonus as a fraction of the rep''s credit on the matching deal; exactly one of amount and rate is set.';
COMMENT ON COLUMN salesmgmt.commission_spiff.valid_from IS 'First day (of the credited event: won or paid) the SPIFF applies; null for no start.';
COMMENT ON COLUMN salesmgmt.commission_spiff.valid_to IS 'Last day the SPIFF applies (inclusive); null for no end.';

CREATE TABLE salesmgmt.commission_assignment (
    assignment_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    plan_id         bigint NOT NULL REFERENCES salesmgmt.commission_plan (plan_id),
    valid_from      date NOT NULL,
    valid_to        date,
    CONSTRAINT commission_assignment_valid_order CHECK (valid_to >= valid_from)
);
CREATE INDEX ON salesmgmt.commission_assignment (rep_id, valid_from);
CREATE INDEX ON salesmgmt.commission_assignment (plan_id);
COMMENT ON TABLE salesmgmt.commission_assignment IS 'Which plan a rep is paid on, and when; the assignments of a rep never overlap.';
COMMENT ON COLUMN salesmgmt.commission_assignment.assignment_id IS 'Identity of the assignment.';
COMMENT ON COLUMN salesmgmt.commission_assignment.rep_id IS 'Rep paid on the plan.';
COMMENT ON COLUMN salesmgmt.commission_assignment.plan_id IS 'Plan the rep is paid on.';
COMMENT ON COLUMN salesmgmt.commission_assignment.valid_from IS 'First day the assignment applies.';
COMMENT ON COLUMN salesmgmt.commission_assignment.valid_to IS 'Last day the assignment applies (inclusive); null while it lasts.';

CREATE TABLE salesmgmt.commission_draw (
    draw_id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    amount          numeric(18,2) NOT NULL
                    CONSTRAINT commission_draw_amount_positive CHECK (amount > 0),
    recoverable     boolean NOT NULL DEFAULT true,
    note            text,
    CONSTRAINT commission_draw_period_order CHECK (period_end >= period_start)
);
CREATE INDEX ON salesmgmt.commission_draw (rep_id, period_end);
CREATE INDEX ON salesmgmt.commission_draw (period_end);
COMMENT ON TABLE salesmgmt.commission_draw IS 'Draws: money advanced to a rep for a period. A recoverable draw is paid back from the rep''s later earnings before payout; a non-recoverable draw is a guaranteed minimum.';
COMMENT ON COLUMN salesmgmt.commission_draw.draw_id IS 'Identity of the draw.';
COMMENT ON COLUMN salesmgmt.commission_draw.rep_id IS 'Rep the draw is for.';
COMMENT ON COLUMN salesmgmt.commission_draw.period_start IS 'First day of the period the draw covers.';
COMMENT ON COLUMN salesmgmt.commission_draw.period_end IS 'Last day of the period the draw covers; the commission run whose period contains this day settles the draw.';
COMMENT ON COLUMN salesmgmt.commission_draw.amount IS 'Amount of the draw in the reporting currency.';
COMMENT ON COLUMN salesmgmt.commission_draw.recoverable IS 'True: an advance, recovered from earnings (carried forward until repaid); false: a guarantee, topped up to when earnings fall short and never recovered.';
COMMENT ON COLUMN salesmgmt.commission_draw.note IS 'Free text.';

-- ---------------------------------------------------------------------------
-- Periods and the ledger
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.commission_period (
    period_start    date PRIMARY KEY,
    period_end      date NOT NULL,
    currency        char(3) NOT NULL REFERENCES salesmgmt.currency (code),
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT commission_period_status_valid CHECK (status IN ('open', 'final')),
    runs            integer NOT NULL DEFAULT 0,
    last_run_at     timestamptz,
    last_run_by     name,
    finalized_at    timestamptz,
    finalized_by    name,
    CONSTRAINT commission_period_order CHECK (period_end >= period_start),
    CONSTRAINT commission_period_finalized_when_final CHECK ((status = 'final') = (finalized_at IS NOT NULL))
);
CREATE INDEX ON salesmgmt.commission_period (currency);
COMMENT ON TABLE salesmgmt.commission_period IS 'Commission periods that have been run: open (draft lines, re-runnable) or final (locked). Periods never overlap. Maintained by run_commissions, finalize_commissions and discard_commissions.';
COMMENT ON COLUMN salesmgmt.commission_period.period_start IS 'First day of the period.';
COMMENT ON COLUMN salesmgmt.commission_period.period_end IS 'Last day of the period (inclusive).';
COMMENT ON COLUMN salesmgmt.commission_period.currency IS 'Reporting currency (salesmgmt.reporting_currency) the period''s lines are in.';
COMMENT ON COLUMN salesmgmt.commission_period.status IS 'open (lines are drafts, a run replaces them) or final (lines are locked; corrections go into an open period).';
COMMENT ON COLUMN salesmgmt.commission_period.runs IS 'How many times the period has been run.';
COMMENT ON COLUMN salesmgmt.commission_period.last_run_at IS 'When the period was last run.';
COMMENT ON COLUMN salesmgmt.commission_period.last_run_by IS 'Role that last ran it.';
COMMENT ON COLUMN salesmgmt.commission_period.finalized_at IS 'When it was finalized; null while open.';
COMMENT ON COLUMN salesmgmt.commission_period.finalized_by IS 'Role that finalized it.';

-- The ledger.  Written in bulk by run_commissions; final lines are never
-- updated or deleted (commission_line_guard).  The ids it holds are not
-- foreign keys: a ledger outlives the rows it explains (like the deal
-- history), the writer reads every referenced row itself, and a run writes
-- millions of lines, where per-row referential checks would dominate.
-- Reps, plans and draws referred to by final lines cannot change under
-- them: assignments and draws that touch a finalized period are refused.
CREATE TABLE salesmgmt.commission_line (
    line_id             bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    period_start        date NOT NULL,
    period_end          date NOT NULL,
    rep_id              bigint NOT NULL,
    kind                text NOT NULL
                        CONSTRAINT commission_line_kind_valid
                        CHECK (kind IN ('earned', 'spiff', 'override', 'clawback', 'draw', 'adjustment')),
    status              text NOT NULL DEFAULT 'draft'
                        CONSTRAINT commission_line_status_valid CHECK (status IN ('draft', 'final')),
    deal_id             bigint,
    payment_id          bigint,
    plan_id             bigint,
    spiff_id            bigint,
    draw_id             bigint,
    source_rep_id       bigint,
    credited_at         timestamptz,
    plan_period_start   date,
    plan_period_end     date,
    share               numeric(5,4),
    credit              numeric,
    quota               numeric(18,2),
    attainment_before   numeric,
    attainment_after    numeric,
    tier                integer,
    rate                numeric,
    tiers               jsonb,
    earned_before       numeric,
    earned_after        numeric,
    capped              boolean,
    base                numeric,
    recoverable         boolean,
    reversed_at         timestamptz,
    amount              numeric(18,2) NOT NULL,
    currency            char(3) NOT NULL,
    reason              text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON salesmgmt.commission_line (period_start, rep_id);
CREATE INDEX ON salesmgmt.commission_line (deal_id);
CREATE INDEX commission_line_draws ON salesmgmt.commission_line (rep_id) WHERE kind = 'draw';
COMMENT ON TABLE salesmgmt.commission_line IS 'The commission ledger: one line per credited item (earned, spiff, override, clawback, draw, adjustment) with everything needed to check it by hand. Draft lines are replaced by a re-run; final lines are never updated or deleted.';
COMMENT ON COLUMN salesmgmt.commission_line.line_id IS 'Identity of the line.';
COMMENT ON COLUMN salesmgmt.commission_line.period_start IS 'First day of the commission period (run) the line belongs to.';
COMMENT ON COLUMN salesmgmt.commission_line.period_end IS 'Last day of the commission period the line belongs to.';
COMMENT ON COLUMN salesmgmt.commission_line.rep_id IS 'Rep the line pays (or charges).';
COMMENT ON COLUMN salesmgmt.commission_line.kind IS 'earned (tier commission on credit), spiff, override (manager''s share of the credit of a rep below them), clawback (reversal of commission on a deal reopened, lost or refunded), draw (advance, guarantee top-up or recovery) or adjustment (correction of a finalized period).';
COMMENT ON COLUMN salesmgmt.commission_line.status IS 'draft (replaced when the period is run again) or final (locked by finalize_commissions).';
COMMENT ON COLUMN salesmgmt.commission_line.deal_id IS 'Deal the line is about; null for draw lines.';
COMMENT ON COLUMN salesmgmt.commission_line.payment_id IS 'Payment or refund credited (payment basis) or clawed back (refund on booking basis).';
COMMENT ON COLUMN salesmgmt.commission_line.plan_id IS 'Plan the line is paid under (the rep''s plan on the credited day; for overrides the manager''s plan).';
COMMENT ON COLUMN salesmgmt.commission_line.spiff_id IS 'SPIFF paid (spiff lines and SPIFF adjustments).';
COMMENT ON COLUMN salesmgmt.commission_line.draw_id IS 'Draw advanced or topped up (draw lines).';
COMMENT ON COLUMN salesmgmt.commission_line.source_rep_id IS 'Override lines: the rep below the manager whose credit the override is on.';
COMMENT ON COLUMN salesmgmt.commission_line.credited_at IS 'When the credited event happened: the deal was won (booking) or the money arrived (payment). Clawbacks and adjustments keep the time of the event they correct.';
COMMENT ON COLUMN salesmgmt.commission_line.plan_period_start IS 'First day of the plan period (month, quarter or year of credited_at) over which attainment and the cap accumulate.';
COMMENT ON COLUMN salesmgmt.commission_line.plan_period_end IS 'Last day of that plan period.';
COMMENT ON COLUMN salesmgmt.commission_line.share IS 'Rep''s split share of the deal (1 without splits).';
COMMENT ON COLUMN salesmgmt.commission_line.credit IS 'Credit to the rep''s attainment in the reporting currency, not rounded: amount (or payment) times share, converted at the credited day''s rate. Negative for refunds (payment basis) and reversals; null on lines that do not credit the rep (spiff, override, draw).';
COMMENT ON COLUMN salesmgmt.commission_line.quota IS 'Rep''s quota for the plan period in the reporting currency.';
COMMENT ON COLUMN salesmgmt.commission_line.attainment_before IS 'Credit of the plan period before this line divided by quota, rounded to 4 decimals for display (the tiers use exact credits); null without a quota.';
COMMENT ON COLUMN salesmgmt.commission_line.attainment_after IS 'Credit of the plan period after this line divided by quota (display, 4 decimals).';
COMMENT ON COLUMN salesmgmt.commission_line.tier IS 'Tier (1 = lowest) the period''s credit is in after this line.';
COMMENT ON COLUMN salesmgmt.commission_line.rate IS 'earned: rate of that tier; spiff and override: the rate applied to base; clawback: fraction of base clawed back.';
COMMENT ON COLUMN salesmgmt.commission_line.tiers IS 'earned lines that cross tiers: one element per tier touched with its range, rate, mode, the slice of credit in it, the amount it earns and any retroactive catch-up; null when the line stays in one tier.';
COMMENT ON COLUMN salesmgmt.commission_line.earned_before IS 'Exact (unrounded) tier commission of the plan period before this line.';
COMMENT ON COLUMN salesmgmt.commission_line.earned_after IS 'Exact tier commission of the plan period after this line; amount = round(least(earned_after, cap), 2) - round(least(earned_before, cap), 2).';
COMMENT ON COLUMN salesmgmt.commission_line.capped IS 'True when the plan''s cap limited the line.';
COMMENT ON COLUMN salesmgmt.commission_line.base IS 'spiff, override, clawback, draw lines: what the rate applies to (credit, flat SPIFF, amount paid on the deal, earnings of the period); amount = round(base * rate, 2) for spiff and override lines, -round(base * rate, 2) for clawbacks.';
COMMENT ON COLUMN salesmgmt.commission_line.reversed_at IS 'Clawback lines: when the deal was reopened, lost or deleted, or the refund paid.';
COMMENT ON COLUMN salesmgmt.commission_line.recoverable IS 'Draw lines: true for advances and recoveries of recoverable draws, false for guarantee top-ups.';
COMMENT ON COLUMN salesmgmt.commission_line.amount IS 'Money paid (negative: taken back), in currency, rounded to cents.';
COMMENT ON COLUMN salesmgmt.commission_line.currency IS 'Reporting currency of amount, credit and quota.';
COMMENT ON COLUMN salesmgmt.commission_line.reason IS 'Why the line exists when kind does not say it all: late, changed, moved, removed (adjustments); lost, reopened, deleted, refund (clawbacks); advance, guarantee, recovery (draws).';
COMMENT ON COLUMN salesmgmt.commission_line.created_at IS 'When the line was written.';

-- ---------------------------------------------------------------------------
-- Guards (C trigger functions in commission.c)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.commission_plan_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_plan_check';
COMMENT ON FUNCTION salesmgmt.commission_plan_check() IS 'Trigger: the basis and period of a plan that paid final lines cannot change (SM010); rates, tiers and caps can, and apply to periods run afterwards.';
CREATE TRIGGER commission_plan_basis_fixed
    BEFORE UPDATE ON salesmgmt.commission_plan
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_plan_check();

CREATE FUNCTION salesmgmt.commission_tier_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_tier_check';
COMMENT ON FUNCTION salesmgmt.commission_tier_check() IS 'Constraint trigger: the tiers of a plan start at 0, have no gaps or overlaps, and only the top one is open-ended (checked at commit, under a lock on the plan).';
CREATE CONSTRAINT TRIGGER commission_tier_contiguous
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.commission_tier
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_tier_check();

CREATE FUNCTION salesmgmt.commission_assignment_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_assignment_check';
COMMENT ON FUNCTION salesmgmt.commission_assignment_check() IS 'Trigger: the assignments of a rep do not overlap (checked under a lock on the rep, so concurrent inserts cannot both pass), and no change touches a finalized commission period.';
CREATE TRIGGER commission_assignment_no_overlap
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.commission_assignment
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_assignment_check();

CREATE FUNCTION salesmgmt.commission_draw_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_draw_check';
COMMENT ON FUNCTION salesmgmt.commission_draw_check() IS 'Trigger: a draw settled in a finalized commission period cannot be added, changed or removed.';
CREATE TRIGGER commission_draw_not_finalized
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.commission_draw
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_draw_check();

CREATE FUNCTION salesmgmt.commission_spiff_check() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_spiff_check';
COMMENT ON FUNCTION salesmgmt.commission_spiff_check() IS 'Trigger: a SPIFF condition names only deal columns (extra must hold an object, other keys a scalar); a SPIFF paid by final lines cannot be deleted.';
CREATE TRIGGER commission_spiff_valid
    BEFORE INSERT OR UPDATE OR DELETE ON salesmgmt.commission_spiff
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_spiff_check();

CREATE FUNCTION salesmgmt.commission_ledger_guard() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'sm_commission_ledger_guard';
COMMENT ON FUNCTION salesmgmt.commission_ledger_guard() IS 'Trigger on commission_line and commission_period: rows of finalized periods are never updated, deleted or truncated (SM010); the others change only through run_commissions, finalize_commissions and discard_commissions.';
CREATE TRIGGER commission_line_immutable
    BEFORE UPDATE OR DELETE ON salesmgmt.commission_line
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_ledger_guard();
CREATE TRIGGER commission_line_no_truncate
    BEFORE TRUNCATE ON salesmgmt.commission_line
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt.commission_ledger_guard();
CREATE TRIGGER commission_period_managed
    BEFORE UPDATE OR DELETE ON salesmgmt.commission_period
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.commission_ledger_guard();
CREATE TRIGGER commission_period_no_truncate
    BEFORE TRUNCATE ON salesmgmt.commission_period
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt.commission_ledger_guard();

-- ---------------------------------------------------------------------------
-- Computation (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.commission_amount(p_plan_id bigint, p_quota numeric,
                                            p_prior_credit numeric, p_credit numeric)
RETURNS numeric
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_commission_amount';
COMMENT ON FUNCTION salesmgmt.commission_amount(bigint, numeric, numeric, numeric) IS 'Tier arithmetic of a plan: what a credit of p_credit earns when p_prior_credit was already credited in the plan period, for quota p_quota (null or 0: the first tier applies to all credit). Returns round(least(E(prior + credit), cap), 2) - round(least(E(prior), cap), 2), E being the plan''s exact cumulative earnings.';

CREATE FUNCTION salesmgmt.run_commissions(p_period_start date, p_period_end date)
RETURNS TABLE (rep_id bigint, credit numeric, quota numeric, attainment numeric,
               earned numeric, spiffs numeric, overrides numeric, adjustments numeric,
               clawbacks numeric, draws numeric, draw_recovery numeric, payout numeric)
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'sm_run_commissions';
COMMENT ON FUNCTION salesmgmt.run_commissions(date, date) IS 'Computes the commission period p_period_start..p_period_end (inclusive): writes its draft commission lines (replacing earlier drafts of the same period), corrections of finalized periods as adjustment and clawback lines, and returns one row per rep. SM010 if the period is finalized.';

CREATE FUNCTION salesmgmt.finalize_commissions(p_period_start date, p_period_end date)
RETURNS bigint
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'sm_finalize_commissions';
COMMENT ON FUNCTION salesmgmt.finalize_commissions(date, date) IS 'Locks a commission period that has been run: its lines become final and can never change; returns the number of lines finalized. SM010 if it is already final.';

CREATE FUNCTION salesmgmt.discard_commissions(p_period_start date, p_period_end date)
RETURNS bigint
LANGUAGE C VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'sm_discard_commissions';
COMMENT ON FUNCTION salesmgmt.discard_commissions(date, date) IS 'Forgets an open commission period: deletes its draft lines and its registration; returns the number of lines deleted. SM010 if the period is final.';

REVOKE ALL ON FUNCTION salesmgmt.run_commissions(date, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.finalize_commissions(date, date) FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.discard_commissions(date, date) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Statements
-- ---------------------------------------------------------------------------

-- A fraction as a percentage without trailing zeros: 0.05 -> 5%, 0.125 -> 12.5%.
CREATE FUNCTION salesmgmt._commission_pct(p numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN p IS NULL THEN NULL
            ELSE pg_catalog.rtrim(pg_catalog.rtrim(pg_catalog.to_char(p * 100, 'FM9999999990.9999'), '0'), '.') || '%' END;
COMMENT ON FUNCTION salesmgmt._commission_pct(numeric) IS 'Internal: formats a fraction as a percentage for statements (0.05 -> 5%).';

CREATE FUNCTION salesmgmt._commission_money(p numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.to_char(pg_catalog.round(p, 2), 'FM999999999999990.00');
COMMENT ON FUNCTION salesmgmt._commission_money(numeric) IS 'Internal: formats an amount with two decimals for statements.';

-- The explanation of a line, in words, from the columns that hold its
-- arithmetic.  Kept in SQL so that a reader can see how the text is made.
CREATE FUNCTION salesmgmt.commission_line_explanation(l salesmgmt.commission_line) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prefix text := CASE WHEN l.kind = 'adjustment' THEN format('adjustment (%s) of ', l.reason) ELSE '' END;
    v_event  text;
    v_what   text;
    v_tiers  text;
    v_cap    numeric;
BEGIN
    -- the credited event: a won deal, a payment or a refund
    IF l.deal_id IS NOT NULL THEN
        IF l.payment_id IS NOT NULL AND l.kind <> 'clawback' THEN
            v_event := format('%s %s of deal %s on %s',
                              coalesce((SELECT p.kind FROM salesmgmt.payment p WHERE p.payment_id = l.payment_id), 'payment'),
                              l.payment_id, l.deal_id, to_char(l.credited_at, 'YYYY-MM-DD'));
        ELSE
            v_event := format('deal %s won %s', l.deal_id, to_char(l.credited_at, 'YYYY-MM-DD'));
        END IF;
        IF l.share IS NOT NULL AND l.share <> 1 THEN
            v_event := v_event || format(' (share %s)', salesmgmt._commission_pct(l.share));
        END IF;
    END IF;

    IF l.kind IN ('earned', 'adjustment') AND l.spiff_id IS NULL AND l.source_rep_id IS NULL THEN
        IF l.tier IS NULL THEN
            v_tiers := 'the plan has no tiers';
        ELSIF l.tiers IS NULL THEN
            v_tiers := format('tier %s: %s x %s = %s', l.tier, salesmgmt._commission_money(l.credit),
                              salesmgmt._commission_pct(l.rate),
                              salesmgmt._commission_money(l.earned_after - l.earned_before));
        ELSE
            SELECT string_agg(format('tier %s [%s, %s) %s %s: %s x %s = %s%s',
                                     t->>'tier',
                                     salesmgmt._commission_pct((t->>'from')::numeric),
                                     coalesce(salesmgmt._commission_pct((t->>'to')::numeric), 'up'),
                                     salesmgmt._commission_pct((t->>'rate')::numeric), t->>'mode',
                                     salesmgmt._commission_money((t->>'credit')::numeric),
                                     salesmgmt._commission_pct((t->>'rate')::numeric),
                                     salesmgmt._commission_money((t->>'amount')::numeric),
                                     CASE WHEN t ? 'catch_up'
                                          THEN ', catch-up ' || salesmgmt._commission_money((t->>'catch_up')::numeric)
                                          ELSE '' END), '; ' ORDER BY n)
              INTO v_tiers
              FROM jsonb_array_elements(l.tiers) WITH ORDINALITY AS e(t, n);
        END IF;
        IF l.capped THEN
            SELECT p.cap INTO v_cap FROM salesmgmt.commission_plan p WHERE p.plan_id = l.plan_id;
        END IF;
        RETURN format('%s%s: credit %s; %s; %s; earnings of the period %s -> %s%s',
                      v_prefix, v_event, salesmgmt._commission_money(l.credit),
                      CASE WHEN l.quota IS NULL OR l.quota = 0 THEN 'no quota, the first tier applies'
                           ELSE format('attainment %s -> %s of quota %s',
                                       salesmgmt._commission_pct(l.attainment_before),
                                       salesmgmt._commission_pct(l.attainment_after),
                                       salesmgmt._commission_money(l.quota)) END,
                      v_tiers,
                      salesmgmt._commission_money(l.earned_before), salesmgmt._commission_money(l.earned_after),
                      CASE WHEN l.capped THEN ', capped at ' || coalesce(salesmgmt._commission_money(v_cap), 'the cap') ELSE '' END);
    END IF;

    -- what a SPIFF, override or clawback line is about
    IF l.spiff_id IS NOT NULL THEN
        v_what := format('SPIFF "%s"', coalesce((SELECT s.name FROM salesmgmt.commission_spiff s WHERE s.spiff_id = l.spiff_id),
                                               l.spiff_id::text));
    ELSIF l.source_rep_id IS NOT NULL THEN
        v_what := format('override on the credit of %s (rep %s)',
                         coalesce((SELECT r.name FROM salesmgmt.rep r WHERE r.rep_id = l.source_rep_id), 'a rep'),
                         l.source_rep_id);
    ELSE
        v_what := 'commission';
    END IF;

    RETURN CASE l.kind
        WHEN 'spiff' THEN format('%s on %s: %s x %s = %s', v_what, v_event, salesmgmt._commission_money(l.base),
                                 salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.amount))
        WHEN 'override' THEN format('%s, %s: %s x %s = %s', v_what, v_event, salesmgmt._commission_money(l.base),
                                    salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.amount))
        WHEN 'adjustment' THEN format('%s%s, %s: %s x %s = %s', v_prefix, v_what, v_event,
                                      salesmgmt._commission_money(l.base), salesmgmt._commission_pct(l.rate),
                                      salesmgmt._commission_money(l.amount))
        WHEN 'clawback' THEN format('clawback of %s on %s: %s %s (%s days after the win), %s of %s paid = %s',
                                    v_what, v_event,
                                    CASE l.reason WHEN 'refund' THEN format('refund %s paid', l.payment_id)
                                                  WHEN 'deleted' THEN 'deleted'
                                                  ELSE l.reason END,
                                    to_char(l.reversed_at, 'YYYY-MM-DD'),
                                    extract(day FROM l.reversed_at - l.credited_at)::int,
                                    salesmgmt._commission_pct(l.rate), salesmgmt._commission_money(l.base),
                                    salesmgmt._commission_money(l.amount))
        WHEN 'draw' THEN CASE l.reason
            WHEN 'advance' THEN format('recoverable draw %s advanced: %s', l.draw_id, salesmgmt._commission_money(l.amount))
            WHEN 'recovery' THEN format('recovery of outstanding recoverable draws from the earnings of the period (%s): %s',
                                        salesmgmt._commission_money(l.base), salesmgmt._commission_money(l.amount))
            WHEN 'guarantee' THEN format('guaranteed draw %s tops up the earnings of the period (%s): %s',
                                         l.draw_id, salesmgmt._commission_money(l.base), salesmgmt._commission_money(l.amount))
            ELSE 'draw' END
        ELSE l.kind END;
END
$$;
COMMENT ON FUNCTION salesmgmt.commission_line_explanation(salesmgmt.commission_line) IS 'The arithmetic of a commission line in words, as shown on statements.';

CREATE VIEW salesmgmt.commission_statement WITH (security_invoker = true) AS
SELECT l.rep_id,
       r.name AS rep_name,
       l.period_start,
       l.period_end,
       l.status,
       l.line_id,
       l.kind,
       l.deal_id,
       d.name AS deal_name,
       l.plan_id,
       p.name AS plan_name,
       l.credited_at,
       l.credit,
       l.amount,
       l.currency,
       salesmgmt.commission_line_explanation(l) AS explanation,
       sum(l.credit) FILTER (WHERE l.kind = 'earned') OVER w AS total_credit,
       sum(l.amount) FILTER (WHERE l.kind = 'earned') OVER w AS total_earned,
       sum(l.amount) FILTER (WHERE l.kind = 'spiff') OVER w AS total_spiffs,
       sum(l.amount) FILTER (WHERE l.kind = 'override') OVER w AS total_overrides,
       sum(l.amount) FILTER (WHERE l.kind = 'adjustment') OVER w AS total_adjustments,
       sum(l.amount) FILTER (WHERE l.kind = 'clawback') OVER w AS total_clawbacks,
       sum(l.amount) FILTER (WHERE l.kind = 'draw') OVER w AS total_draws,
       sum(l.amount) OVER w AS total_payout
  FROM salesmgmt.commission_line l
  JOIN salesmgmt.rep r ON r.rep_id = l.rep_id
  LEFT JOIN salesmgmt.deal d ON d.deal_id = l.deal_id
  LEFT JOIN salesmgmt.commission_plan p ON p.plan_id = l.plan_id
WINDOW w AS (PARTITION BY l.rep_id, l.period_start, l.period_end);
COMMENT ON VIEW salesmgmt.commission_statement IS 'Commission statements: per rep and period every line with its explanation, and the period totals by kind on each line. Runs with the privileges of the reader, so row-level security on the lines applies.';
COMMENT ON COLUMN salesmgmt.commission_statement.rep_id IS 'Rep the statement is for.';
COMMENT ON COLUMN salesmgmt.commission_statement.rep_name IS 'Name of the rep.';
COMMENT ON COLUMN salesmgmt.commission_statement.period_start IS 'First day of the commission period.';
COMMENT ON COLUMN salesmgmt.commission_statement.period_end IS 'Last day of the commission period.';
COMMENT ON COLUMN salesmgmt.commission_statement.status IS 'draft or final.';
COMMENT ON COLUMN salesmgmt.commission_statement.line_id IS 'The ledger line.';
COMMENT ON COLUMN salesmgmt.commission_statement.kind IS 'earned, spiff, override, clawback, draw or adjustment.';
COMMENT ON COLUMN salesmgmt.commission_statement.deal_id IS 'Deal of the line, if any.';
COMMENT ON COLUMN salesmgmt.commission_statement.deal_name IS 'Name of the deal (null if it was deleted).';
COMMENT ON COLUMN salesmgmt.commission_statement.plan_id IS 'Plan the line is paid under.';
COMMENT ON COLUMN salesmgmt.commission_statement.plan_name IS 'Name of that plan.';
COMMENT ON COLUMN salesmgmt.commission_statement.credited_at IS 'When the credited event happened.';
COMMENT ON COLUMN salesmgmt.commission_statement.credit IS 'Credit of the line (reporting currency, not rounded).';
COMMENT ON COLUMN salesmgmt.commission_statement.amount IS 'Amount of the line, rounded to cents.';
COMMENT ON COLUMN salesmgmt.commission_statement.currency IS 'Reporting currency.';
COMMENT ON COLUMN salesmgmt.commission_statement.explanation IS 'The line''s arithmetic in words.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_credit IS 'Rep''s credit on earned lines of the period.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_earned IS 'Sum of the rep''s earned lines of the period.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_spiffs IS 'Sum of the rep''s SPIFF lines of the period.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_overrides IS 'Sum of the rep''s override lines of the period.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_adjustments IS 'Sum of the rep''s adjustment lines of the period.';
COMMENT ON COLUMN salesmgmt.commission_statement.total_clawbacks IS 'Sum of the rep''s clawback lines of the period (negative).';
COMMENT ON COLUMN salesmgmt.commission_statement.total_draws IS 'Sum of the rep''s draw lines (advances and top-ups, minus recoveries).';
COMMENT ON COLUMN salesmgmt.commission_statement.total_payout IS 'What the rep is paid for the period: the sum of all their lines.';

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.commission_plan', 'salesmgmt.commission_tier', 'salesmgmt.commission_spiff',
    'salesmgmt.commission_assignment', 'salesmgmt.commission_draw',
    'salesmgmt.commission_period', 'salesmgmt.commission_line']) AS t;

-- ===== src/kpi.sql =====
-- kpi.sql: performance evaluation, training and recognition.
--
-- Performance-evaluation pillar: results against targets (KPIs computed
-- from deals, activities, tasks and quotas), work attitude (manager
-- reviews), customer satisfaction (CSAT and NPS responses); KPI schemes with
-- weights and grade bands; scorecards with scores, grades and ranks.
-- Training-and-incentives pillar (non-material side): training courses and
-- enrollments, recognitions (awards, badges, promotions, bonuses) and the
-- leaderboard.  Scoring and the scorecard computation are in kpi.c.
-- See docs/kpi-scorecards.md and docs/training-and-recognition.md.

-- ---------------------------------------------------------------------------
-- Work attitude and customer satisfaction
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.review (
    review_id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id              bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    reviewer_rep_id     bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    period_start        date NOT NULL,
    period_end          date NOT NULL,
    discipline          smallint
                        CONSTRAINT review_discipline_range CHECK (discipline BETWEEN 1 AND 5),
    teamwork            smallint
                        CONSTRAINT review_teamwork_range CHECK (teamwork BETWEEN 1 AND 5),
    customer_service    smallint
                        CONSTRAINT review_customer_service_range CHECK (customer_service BETWEEN 1 AND 5),
    comment             text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT review_period_order CHECK (period_end >= period_start),
    CONSTRAINT review_not_self CHECK (reviewer_rep_id <> rep_id),
    CONSTRAINT review_has_rating
        CHECK (discipline IS NOT NULL OR teamwork IS NOT NULL OR customer_service IS NOT NULL),
    CONSTRAINT review_unique_period UNIQUE (rep_id, reviewer_rep_id, period_start, period_end)
);
CREATE INDEX ON salesmgmt.review (reviewer_rep_id);
CREATE INDEX ON salesmgmt.review (period_end);
COMMENT ON TABLE salesmgmt.review IS 'Reviews of a rep''s work attitude for a period: discipline, teamwork and customer service rated 1 (poor) to 5 (excellent).';
COMMENT ON COLUMN salesmgmt.review.review_id IS 'Identity of the review.';
COMMENT ON COLUMN salesmgmt.review.rep_id IS 'Rep who is reviewed.';
COMMENT ON COLUMN salesmgmt.review.reviewer_rep_id IS 'Rep (usually the manager) who wrote the review; never the reviewed rep.';
COMMENT ON COLUMN salesmgmt.review.period_start IS 'First day of the period the review covers.';
COMMENT ON COLUMN salesmgmt.review.period_end IS 'Last day of the period the review covers; a review counts for the scorecard period that contains this day.';
COMMENT ON COLUMN salesmgmt.review.discipline IS 'Discipline rating, 1 to 5; null when not rated.';
COMMENT ON COLUMN salesmgmt.review.teamwork IS 'Teamwork rating, 1 to 5; null when not rated.';
COMMENT ON COLUMN salesmgmt.review.customer_service IS 'Customer-service rating, 1 to 5; null when not rated.';
COMMENT ON COLUMN salesmgmt.review.comment IS 'The reviewer''s comments.';
COMMENT ON COLUMN salesmgmt.review.created_at IS 'When the review was recorded.';

CREATE TABLE salesmgmt.csat_response (
    response_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL REFERENCES salesmgmt.account (account_id),
    deal_id         bigint REFERENCES salesmgmt.deal (deal_id),
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    csat            smallint
                    CONSTRAINT csat_response_csat_range CHECK (csat BETWEEN 1 AND 5),
    nps             smallint
                    CONSTRAINT csat_response_nps_range CHECK (nps BETWEEN 0 AND 10),
    comment         text,
    responded_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT csat_response_has_answer CHECK (csat IS NOT NULL OR nps IS NOT NULL)
);
CREATE INDEX ON salesmgmt.csat_response (account_id);
CREATE INDEX ON salesmgmt.csat_response (deal_id);
CREATE INDEX ON salesmgmt.csat_response (rep_id, responded_at);
CREATE INDEX ON salesmgmt.csat_response (responded_at);
COMMENT ON TABLE salesmgmt.csat_response IS 'Customer satisfaction survey answers: CSAT (1-5) and the net-promoter question (0-10), about a rep and optionally a deal.';
COMMENT ON COLUMN salesmgmt.csat_response.response_id IS 'Identity of the response.';
COMMENT ON COLUMN salesmgmt.csat_response.account_id IS 'Customer who answered.';
COMMENT ON COLUMN salesmgmt.csat_response.deal_id IS 'Deal the survey was about, if any; it must be a deal of the same account.';
COMMENT ON COLUMN salesmgmt.csat_response.rep_id IS 'Rep the answer is credited to; defaults to the deal''s owner, else the account''s owner.';
COMMENT ON COLUMN salesmgmt.csat_response.csat IS 'Satisfaction, 1 (very dissatisfied) to 5 (very satisfied); null when not answered.';
COMMENT ON COLUMN salesmgmt.csat_response.nps IS 'Likelihood to recommend, 0 to 10: 9-10 promoter, 7-8 passive, 0-6 detractor; null when not answered.';
COMMENT ON COLUMN salesmgmt.csat_response.comment IS 'The customer''s comment.';
COMMENT ON COLUMN salesmgmt.csat_response.responded_at IS 'When the customer answered; decides the scorecard period.';

-- The deal of a response must be the account's, and the rep defaults to
-- the deal's owner (else the account's owner).
CREATE FUNCTION salesmgmt.csat_response_defaults() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_account   bigint;
    v_owner     bigint;
BEGIN
    IF NEW.deal_id IS NOT NULL THEN
        SELECT d.account_id, d.owner_rep_id INTO v_account, v_owner
          FROM salesmgmt.deal d WHERE d.deal_id = NEW.deal_id;
        -- an unknown deal is left to the foreign key, which names it
        IF FOUND AND v_account IS DISTINCT FROM NEW.account_id THEN
            RAISE EXCEPTION 'deal % is not a deal of account %', NEW.deal_id, NEW.account_id
                USING ERRCODE = '23514', CONSTRAINT = 'csat_response_deal_of_account',
                      DETAIL = format('The deal belongs to account %s.', v_account),
                      HINT = 'Give the account of the deal, or leave deal_id null.';
        END IF;
    ELSE
        SELECT a.owner_rep_id INTO v_owner FROM salesmgmt.account a WHERE a.account_id = NEW.account_id;
    END IF;
    IF NEW.rep_id IS NULL THEN
        NEW.rep_id := v_owner;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt.csat_response_defaults() IS 'Trigger: checks that a response''s deal belongs to its account and credits the response to the deal''s (else the account''s) owner when no rep is given.';
CREATE TRIGGER csat_response_deal_of_account
    BEFORE INSERT OR UPDATE OF account_id, deal_id, rep_id ON salesmgmt.csat_response
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.csat_response_defaults();

-- ---------------------------------------------------------------------------
-- Training
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.training_course (
    course_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT training_course_name_not_blank CHECK (btrim(name) <> ''),
    topic       text,
    hours       numeric(6,2) NOT NULL
                CONSTRAINT training_course_hours_positive CHECK (hours > 0),
    required    boolean NOT NULL DEFAULT false,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT training_course_name_unique UNIQUE (name)
);
COMMENT ON TABLE salesmgmt.training_course IS 'Training courses of the training plan; a required course is expected of every active rep from the day it is created.';
COMMENT ON COLUMN salesmgmt.training_course.course_id IS 'Identity of the course.';
COMMENT ON COLUMN salesmgmt.training_course.name IS 'Unique course name.';
COMMENT ON COLUMN salesmgmt.training_course.topic IS 'Topic, free text (e.g. product, negotiation, compliance).';
COMMENT ON COLUMN salesmgmt.training_course.hours IS 'Length of the course in hours.';
COMMENT ON COLUMN salesmgmt.training_course.required IS 'True when every active rep must complete the course; it then counts in every rep''s training_completion.';
COMMENT ON COLUMN salesmgmt.training_course.description IS 'What the course teaches.';
COMMENT ON COLUMN salesmgmt.training_course.created_at IS 'When the course was created; a required course counts from this moment.';

CREATE TABLE salesmgmt.training_enrollment (
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    course_id       bigint NOT NULL REFERENCES salesmgmt.training_course (course_id),
    status          text NOT NULL DEFAULT 'enrolled'
                    CONSTRAINT training_enrollment_status_valid
                    CHECK (status IN ('enrolled', 'completed', 'failed')),
    score           numeric(5,2)
                    CONSTRAINT training_enrollment_score_range CHECK (score BETWEEN 0 AND 100),
    enrolled_at     timestamptz NOT NULL DEFAULT now(),
    due_date        date,
    completed_at    timestamptz,
    PRIMARY KEY (rep_id, course_id),
    CONSTRAINT training_enrollment_finished_when_done
        CHECK ((status = 'enrolled') = (completed_at IS NULL)),
    CONSTRAINT training_enrollment_score_when_done
        CHECK (score IS NULL OR status <> 'enrolled'),
    CONSTRAINT training_enrollment_order CHECK (completed_at >= enrolled_at)
);
CREATE INDEX ON salesmgmt.training_enrollment (course_id);
COMMENT ON TABLE salesmgmt.training_enrollment IS 'A rep''s enrollment in a course and its result; one row per rep and course (a retake updates it).';
COMMENT ON COLUMN salesmgmt.training_enrollment.rep_id IS 'Rep taking the course.';
COMMENT ON COLUMN salesmgmt.training_enrollment.course_id IS 'Course taken.';
COMMENT ON COLUMN salesmgmt.training_enrollment.status IS 'enrolled (in progress), completed (passed) or failed.';
COMMENT ON COLUMN salesmgmt.training_enrollment.score IS 'Exam score 0-100, once completed or failed.';
COMMENT ON COLUMN salesmgmt.training_enrollment.enrolled_at IS 'When the rep was enrolled; the course counts in training_completion from then.';
COMMENT ON COLUMN salesmgmt.training_enrollment.due_date IS 'Date by which the course should be completed (the training plan).';
COMMENT ON COLUMN salesmgmt.training_enrollment.completed_at IS 'When the course was completed or failed; null while enrolled.';

-- salesmgmt.enroll_reps: the training plan for a team (and its sub-teams)
-- or for every active rep; reps already enrolled are left as they are.
CREATE FUNCTION salesmgmt.enroll_reps(p_course_id bigint, p_team_id bigint DEFAULT NULL, p_due_date date DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    IF p_course_id IS NULL THEN
        RAISE EXCEPTION 'course must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.training_course WHERE course_id = p_course_id) THEN
        RAISE EXCEPTION 'training course % does not exist', p_course_id
            USING ERRCODE = '42704', HINT = 'Create it in salesmgmt.training_course first.';
    END IF;
    IF p_team_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM salesmgmt.team WHERE team_id = p_team_id) THEN
        RAISE EXCEPTION 'team % does not exist', p_team_id USING ERRCODE = '42704';
    END IF;
    WITH RECURSIVE teams(team_id) AS (
        SELECT p_team_id WHERE p_team_id IS NOT NULL
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN teams ON t.parent_team_id = teams.team_id
    )
    INSERT INTO salesmgmt.training_enrollment (rep_id, course_id, due_date)
    SELECT r.rep_id, p_course_id, p_due_date
      FROM salesmgmt.rep r
     WHERE r.active
       AND (p_team_id IS NULL OR r.team_id IN (SELECT team_id FROM teams))
    ON CONFLICT (rep_id, course_id) DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION salesmgmt.enroll_reps(bigint, bigint, date) IS 'Enrolls every active rep of a team and its sub-teams (all active reps when the team is null) in a course, with an optional due date; returns how many enrollments were added.';

CREATE VIEW salesmgmt.training_status AS
SELECT r.rep_id,
       r.name AS rep_name,
       r.team_id,
       count(*) FILTER (WHERE c.required) AS required_courses,
       count(*) FILTER (WHERE c.required AND e.status = 'completed') AS required_completed,
       count(*) FILTER (WHERE e.status = 'enrolled') AS in_progress,
       count(*) FILTER (WHERE e.status = 'enrolled' AND e.due_date < current_date) AS overdue,
       count(*) FILTER (WHERE e.status = 'completed') AS completed,
       count(*) FILTER (WHERE e.status = 'failed') AS failed,
       coalesce(sum(c.hours) FILTER (WHERE e.status = 'completed'), 0) AS hours_completed
  FROM salesmgmt.rep r
  JOIN salesmgmt.training_course c ON true
  LEFT JOIN salesmgmt.training_enrollment e ON e.rep_id = r.rep_id AND e.course_id = c.course_id
 WHERE r.active AND (c.required OR e.rep_id IS NOT NULL)
 GROUP BY r.rep_id, r.name, r.team_id;
COMMENT ON VIEW salesmgmt.training_status IS 'Per active rep: required courses and how many are completed, courses in progress and overdue, completed and failed courses, hours of training completed.';
COMMENT ON COLUMN salesmgmt.training_status.rep_id IS 'Rep.';
COMMENT ON COLUMN salesmgmt.training_status.rep_name IS 'Name of the rep.';
COMMENT ON COLUMN salesmgmt.training_status.team_id IS 'Team of the rep.';
COMMENT ON COLUMN salesmgmt.training_status.required_courses IS 'Number of required courses (each expected of every active rep).';
COMMENT ON COLUMN salesmgmt.training_status.required_completed IS 'Required courses the rep has completed.';
COMMENT ON COLUMN salesmgmt.training_status.in_progress IS 'Courses the rep is enrolled in and has not finished.';
COMMENT ON COLUMN salesmgmt.training_status.overdue IS 'Courses in progress whose due date has passed.';
COMMENT ON COLUMN salesmgmt.training_status.completed IS 'Courses completed (passed).';
COMMENT ON COLUMN salesmgmt.training_status.failed IS 'Courses failed.';
COMMENT ON COLUMN salesmgmt.training_status.hours_completed IS 'Hours of the courses completed.';

-- ---------------------------------------------------------------------------
-- Recognition (non-material and material awards)
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.recognition (
    recognition_id  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    kind            text NOT NULL
                    CONSTRAINT recognition_kind_valid
                    CHECK (kind IN ('award', 'badge', 'promotion', 'bonus')),
    title           text NOT NULL
                    CONSTRAINT recognition_title_not_blank CHECK (btrim(title) <> ''),
    period_start    date,
    amount          numeric(18,2)
                    CONSTRAINT recognition_amount_positive CHECK (amount > 0),
    currency        char(3) REFERENCES salesmgmt.currency (code),
    reason          text,
    granted_by      bigint REFERENCES salesmgmt.rep (rep_id),
    granted_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recognition_bonus_has_amount CHECK (kind <> 'bonus' OR amount IS NOT NULL),
    CONSTRAINT recognition_amount_has_currency CHECK ((amount IS NULL) = (currency IS NULL)),
    CONSTRAINT recognition_not_self CHECK (granted_by <> rep_id),
    CONSTRAINT recognition_unique UNIQUE NULLS NOT DISTINCT (rep_id, kind, title, period_start)
);
CREATE INDEX ON salesmgmt.recognition (period_start);
CREATE INDEX ON salesmgmt.recognition (currency);
CREATE INDEX ON salesmgmt.recognition (granted_by);
COMMENT ON TABLE salesmgmt.recognition IS 'Incentives granted to reps: awards, badges and promotions (non-material) and bonuses (material, with an amount).';
COMMENT ON COLUMN salesmgmt.recognition.recognition_id IS 'Identity of the recognition.';
COMMENT ON COLUMN salesmgmt.recognition.rep_id IS 'Rep recognised.';
COMMENT ON COLUMN salesmgmt.recognition.kind IS 'award, badge, promotion or bonus.';
COMMENT ON COLUMN salesmgmt.recognition.title IS 'What it is, e.g. "Top closer Q1", "Senior Account Executive".';
COMMENT ON COLUMN salesmgmt.recognition.period_start IS 'First day of the period the recognition is for; the leaderboard shows it with the scorecards of the period containing this day.';
COMMENT ON COLUMN salesmgmt.recognition.amount IS 'Money granted (bonuses must have one; awards may); null otherwise.';
COMMENT ON COLUMN salesmgmt.recognition.currency IS 'ISO 4217 currency of amount; set exactly when amount is.';
COMMENT ON COLUMN salesmgmt.recognition.reason IS 'Why it was granted.';
COMMENT ON COLUMN salesmgmt.recognition.granted_by IS 'Rep (usually a manager) who granted it; null when granted by the company.';
COMMENT ON COLUMN salesmgmt.recognition.granted_at IS 'When it was granted.';

-- ---------------------------------------------------------------------------
-- KPI definitions and schemes
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.kpi (
    kpi_id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    code            text NOT NULL
                    CONSTRAINT kpi_code_format CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name            text NOT NULL
                    CONSTRAINT kpi_name_not_blank CHECK (btrim(name) <> ''),
    metric          text NOT NULL
                    CONSTRAINT kpi_metric_known CHECK (metric IN (
                        'revenue_won', 'deals_won', 'win_rate', 'avg_deal_size',
                        'sales_cycle_days', 'pipeline_created', 'activities', 'meetings',
                        'quota_attainment', 'task_completion_rate', 'csat_avg', 'nps',
                        'training_completion', 'attitude_discipline', 'attitude_teamwork',
                        'attitude_customer_service', 'custom')),
    metric_function text,
    direction       text NOT NULL DEFAULT 'higher'
                    CONSTRAINT kpi_direction_valid CHECK (direction IN ('higher', 'lower')),
    method          text NOT NULL DEFAULT 'achievement'
                    CONSTRAINT kpi_method_valid CHECK (method IN ('achievement', 'reduction', 'threshold', 'band')),
    target          numeric NOT NULL,
    floor           numeric,
    cap             numeric(8,2) NOT NULL DEFAULT 100
                    CONSTRAINT kpi_cap_nonnegative CHECK (cap >= 0),
    unit            text,
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kpi_code_unique UNIQUE (code),
    CONSTRAINT kpi_custom_metric_function CHECK ((metric = 'custom') = (metric_function IS NOT NULL)),
    CONSTRAINT kpi_method_direction
        CHECK ((method <> 'achievement' OR direction = 'higher') AND (method <> 'reduction' OR direction = 'lower')),
    CONSTRAINT kpi_target_positive CHECK (method NOT IN ('achievement', 'reduction') OR target > 0),
    CONSTRAINT kpi_band_floor
        CHECK (method <> 'band' OR (floor IS NOT NULL AND
                                    ((direction = 'higher' AND floor < target) OR (direction = 'lower' AND floor > target))))
);
COMMENT ON TABLE salesmgmt.kpi IS 'Key performance indicators: a metric measured per rep and period, its target and how the actual value is turned into a score (see docs/kpi-scorecards.md).';
COMMENT ON COLUMN salesmgmt.kpi.kpi_id IS 'Identity of the KPI.';
COMMENT ON COLUMN salesmgmt.kpi.code IS 'Short unique code (lower case, digits, underscores); keys the KPI in scorecard details.';
COMMENT ON COLUMN salesmgmt.kpi.name IS 'Name shown to people.';
COMMENT ON COLUMN salesmgmt.kpi.metric IS 'What is measured: a built-in metric (salesmgmt.kpi_metrics() lists them) or custom (computed by metric_function).';
COMMENT ON COLUMN salesmgmt.kpi.metric_function IS 'For custom metrics: a function (p_from date, p_to date) RETURNS TABLE (rep_id bigint, value numeric); stored schema-qualified as resolved when the KPI was saved.';
COMMENT ON COLUMN salesmgmt.kpi.direction IS 'higher (more is better) or lower (less is better).';
COMMENT ON COLUMN salesmgmt.kpi.method IS 'Scoring method: achievement (actual / target x 100), reduction (100 - (actual - target) / target x 100, lower is better), threshold (100 at or past target, else 0), band (linear from floor = 0 to target = 100).';
COMMENT ON COLUMN salesmgmt.kpi.target IS 'Target value of the metric, in its unit; positive for achievement and reduction.';
COMMENT ON COLUMN salesmgmt.kpi.floor IS 'Worst acceptable value: an actual worse than the floor scores 0; for band, the value that scores 0 (required, on the worse side of the target).';
COMMENT ON COLUMN salesmgmt.kpi.cap IS 'Maximum score (e.g. 120 rewards over-achievement up to 120); scores are clamped to [0, cap].';
COMMENT ON COLUMN salesmgmt.kpi.unit IS 'Unit of the metric for display, e.g. USD, %, days, count.';
COMMENT ON COLUMN salesmgmt.kpi.description IS 'What the KPI encourages, free text.';
COMMENT ON COLUMN salesmgmt.kpi.created_at IS 'When the KPI was defined.';

CREATE FUNCTION salesmgmt._kpi_validate() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sm_kpi_validate';
COMMENT ON FUNCTION salesmgmt._kpi_validate() IS 'Internal trigger: explains a bad KPI definition (unknown metric, method and direction, target, floor, cap) and resolves a custom metric function to its schema-qualified name.';
CREATE TRIGGER kpi_validate
    BEFORE INSERT OR UPDATE ON salesmgmt.kpi
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._kpi_validate();

CREATE TABLE salesmgmt.kpi_scheme (
    scheme_id   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT kpi_scheme_name_not_blank CHECK (btrim(name) <> ''),
    grade_bands jsonb NOT NULL DEFAULT '{"A": 90, "B": 75, "C": 60, "D": 0}',
    team_id     bigint REFERENCES salesmgmt.team (team_id),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT kpi_scheme_name_unique UNIQUE (name)
);
CREATE INDEX ON salesmgmt.kpi_scheme (team_id);
COMMENT ON TABLE salesmgmt.kpi_scheme IS 'A KPI scheme: a weighted set of KPIs (salesmgmt.kpi_scheme_item) and the grade bands that turn a score into a grade.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.scheme_id IS 'Identity of the scheme.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.name IS 'Unique scheme name.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.grade_bands IS 'JSON object grade -> lowest score of the grade, e.g. {"A": 90, "B": 75, "C": 60, "D": 0}; a score gets the grade with the highest lower bound it reaches; one band must start at 0.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.team_id IS 'Team whose reps the scheme scores, sub-teams included (by the reps'' current team); null scores every rep.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.description IS 'Who the scheme is for, free text.';
COMMENT ON COLUMN salesmgmt.kpi_scheme.created_at IS 'When the scheme was created.';

CREATE FUNCTION salesmgmt._kpi_scheme_validate() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sm_kpi_scheme_validate';
COMMENT ON FUNCTION salesmgmt._kpi_scheme_validate() IS 'Internal trigger: refuses grade bands that are not an object of grade -> non-negative number with one band starting at 0.';
CREATE TRIGGER kpi_scheme_grade_bands_valid
    BEFORE INSERT OR UPDATE OF grade_bands ON salesmgmt.kpi_scheme
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._kpi_scheme_validate();

CREATE TABLE salesmgmt.kpi_scheme_item (
    scheme_id   bigint NOT NULL REFERENCES salesmgmt.kpi_scheme (scheme_id) ON DELETE CASCADE,
    kpi_id      bigint NOT NULL REFERENCES salesmgmt.kpi (kpi_id),
    weight      numeric(5,2) NOT NULL
                CONSTRAINT kpi_scheme_item_weight_range CHECK (weight > 0 AND weight <= 100),
    PRIMARY KEY (scheme_id, kpi_id)
);
CREATE INDEX ON salesmgmt.kpi_scheme_item (kpi_id);
COMMENT ON TABLE salesmgmt.kpi_scheme_item IS 'KPIs of a scheme and their weights; the weights of a scheme sum to 100 (checked at commit, so items can be added one by one).';
COMMENT ON COLUMN salesmgmt.kpi_scheme_item.scheme_id IS 'Scheme.';
COMMENT ON COLUMN salesmgmt.kpi_scheme_item.kpi_id IS 'KPI in the scheme.';
COMMENT ON COLUMN salesmgmt.kpi_scheme_item.weight IS 'Weight of the KPI in the scheme''s score, in (0, 100].';

-- Weights of a scheme must sum to exactly 100; checked at commit so that
-- items can be entered one by one.
CREATE FUNCTION salesmgmt.kpi_scheme_check_weights() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schemes   bigint[];
    v_scheme    bigint;
    v_total     numeric;
    v_count     bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_schemes := ARRAY[NEW.scheme_id];
    ELSIF TG_OP = 'DELETE' THEN
        v_schemes := ARRAY[OLD.scheme_id];
    ELSIF OLD.scheme_id = NEW.scheme_id THEN
        v_schemes := ARRAY[NEW.scheme_id];
    ELSE
        v_schemes := ARRAY[NEW.scheme_id, OLD.scheme_id];
    END IF;
    FOREACH v_scheme IN ARRAY v_schemes
    LOOP
        -- Serialise changes per scheme: two transactions that each bring
        -- the total to 100 could otherwise both pass and commit 150.
        -- A scheme deleted in this transaction has taken its items along.
        PERFORM 1 FROM salesmgmt.kpi_scheme WHERE scheme_id = v_scheme FOR NO KEY UPDATE;
        CONTINUE WHEN NOT FOUND;
        SELECT sum(weight), count(*) INTO v_total, v_count
          FROM salesmgmt.kpi_scheme_item WHERE scheme_id = v_scheme;
        IF v_count > 0 AND v_total <> 100 THEN
            RAISE EXCEPTION 'weights of KPI scheme % sum to %, not 100', v_scheme, v_total
                USING ERRCODE = '23514', CONSTRAINT = 'kpi_scheme_weights_sum_to_100',
                      DETAIL = format('The scheme has %s KPIs.', v_count),
                      HINT = 'Change the weights in the same transaction so that they add up to 100.';
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION salesmgmt.kpi_scheme_check_weights() IS 'Constraint trigger (deferred to commit): the weights of a scheme with KPIs sum to 100.';
CREATE CONSTRAINT TRIGGER kpi_scheme_weights_sum_to_100
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.kpi_scheme_item
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.kpi_scheme_check_weights();

-- ---------------------------------------------------------------------------
-- Scorecards
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.scorecard (
    scorecard_id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    scheme_id       bigint NOT NULL REFERENCES salesmgmt.kpi_scheme (scheme_id) ON DELETE CASCADE,
    rep_id          bigint NOT NULL REFERENCES salesmgmt.rep (rep_id),
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    score           numeric(8,2),
    grade           text,
    rank            integer
                    CONSTRAINT scorecard_rank_positive CHECK (rank > 0),
    coverage        numeric(5,2) NOT NULL
                    CONSTRAINT scorecard_coverage_range CHECK (coverage BETWEEN 0 AND 100),
    computed_at     timestamptz NOT NULL DEFAULT now(),
    computed_by     name NOT NULL DEFAULT current_user,
    CONSTRAINT scorecard_period_order CHECK (period_end >= period_start),
    CONSTRAINT scorecard_unique_period UNIQUE (scheme_id, period_start, period_end, rep_id),
    CONSTRAINT scorecard_scored_when_covered CHECK ((score IS NULL) = (coverage = 0))
);
CREATE INDEX ON salesmgmt.scorecard (rep_id);
CREATE INDEX ON salesmgmt.scorecard (scheme_id, period_end, period_start);
COMMENT ON TABLE salesmgmt.scorecard IS 'Result of salesmgmt.compute_scorecards: a rep''s weighted score, grade and rank under a scheme for a period; recomputing the period replaces its rows.';
COMMENT ON COLUMN salesmgmt.scorecard.scorecard_id IS 'Identity of the scorecard.';
COMMENT ON COLUMN salesmgmt.scorecard.scheme_id IS 'Scheme the rep was scored under.';
COMMENT ON COLUMN salesmgmt.scorecard.rep_id IS 'Rep scored.';
COMMENT ON COLUMN salesmgmt.scorecard.period_start IS 'First day of the scored period.';
COMMENT ON COLUMN salesmgmt.scorecard.period_end IS 'Last day of the scored period (inclusive).';
COMMENT ON COLUMN salesmgmt.scorecard.score IS 'Weighted score over the KPIs that had data (0 to the highest cap), two decimals; null when no KPI had data.';
COMMENT ON COLUMN salesmgmt.scorecard.grade IS 'Grade from the scheme''s grade bands; null when there is no score.';
COMMENT ON COLUMN salesmgmt.scorecard.rank IS 'Rank by score among the scheme''s scorecards of the period, 1 = best; equal scores share a rank and the next rank is skipped (1, 1, 3); null when there is no score.';
COMMENT ON COLUMN salesmgmt.scorecard.coverage IS 'Sum of the weights of the KPIs that had data (100 = all); the weights of the others were shared out over these.';
COMMENT ON COLUMN salesmgmt.scorecard.computed_at IS 'When the scorecard was computed.';
COMMENT ON COLUMN salesmgmt.scorecard.computed_by IS 'Database role that computed it.';

CREATE TABLE salesmgmt.scorecard_item (
    scorecard_id        bigint NOT NULL REFERENCES salesmgmt.scorecard (scorecard_id) ON DELETE CASCADE,
    kpi_id              bigint NOT NULL REFERENCES salesmgmt.kpi (kpi_id),
    value               numeric,
    score               numeric(8,2),
    weight              numeric(5,2) NOT NULL,
    effective_weight    numeric(7,4) NOT NULL,
    method              text NOT NULL,
    direction           text NOT NULL,
    target              numeric NOT NULL,
    floor               numeric,
    cap                 numeric(8,2) NOT NULL,
    PRIMARY KEY (scorecard_id, kpi_id),
    CONSTRAINT scorecard_item_scored_when_data CHECK ((value IS NULL) = (score IS NULL)),
    CONSTRAINT scorecard_item_no_weight_without_data CHECK (value IS NOT NULL OR effective_weight = 0)
);
CREATE INDEX ON salesmgmt.scorecard_item (kpi_id);
COMMENT ON TABLE salesmgmt.scorecard_item IS 'One KPI of a scorecard: the measured value, its score and weight, and the KPI settings it was scored with (so history stays explainable when a KPI changes).';
COMMENT ON COLUMN salesmgmt.scorecard_item.scorecard_id IS 'Scorecard the line belongs to.';
COMMENT ON COLUMN salesmgmt.scorecard_item.kpi_id IS 'KPI measured.';
COMMENT ON COLUMN salesmgmt.scorecard_item.value IS 'Measured value of the metric (4 decimals); null when the rep had no data for it.';
COMMENT ON COLUMN salesmgmt.scorecard_item.score IS 'Score of the value (salesmgmt.kpi_score, 0 to cap, 2 decimals); null without data.';
COMMENT ON COLUMN salesmgmt.scorecard_item.weight IS 'Weight of the KPI in the scheme.';
COMMENT ON COLUMN salesmgmt.scorecard_item.effective_weight IS 'Weight actually applied, in percent of the score: the weight scaled up so that the KPIs with data sum to 100; 0 without data.';
COMMENT ON COLUMN salesmgmt.scorecard_item.method IS 'Scoring method of the KPI at the time.';
COMMENT ON COLUMN salesmgmt.scorecard_item.direction IS 'Direction of the KPI at the time.';
COMMENT ON COLUMN salesmgmt.scorecard_item.target IS 'Target of the KPI at the time.';
COMMENT ON COLUMN salesmgmt.scorecard_item.floor IS 'Floor of the KPI at the time.';
COMMENT ON COLUMN salesmgmt.scorecard_item.cap IS 'Cap of the KPI at the time.';

-- ---------------------------------------------------------------------------
-- Functions (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.kpi_score(p_value numeric, p_target numeric, p_method text,
                                    p_direction text DEFAULT 'higher', p_floor numeric DEFAULT NULL,
                                    p_cap numeric DEFAULT 100)
RETURNS numeric
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_kpi_score';
COMMENT ON FUNCTION salesmgmt.kpi_score(numeric, numeric, text, text, numeric, numeric) IS 'Score (0 to cap, 2 decimals) of an actual value against a target by method achievement, reduction, threshold or band; null when the value is null (no data).';

CREATE FUNCTION salesmgmt.kpi_metrics(
    OUT metric text, OUT unit text, OUT direction text, OUT description text, OUT no_data_when text)
RETURNS SETOF record
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_kpi_metrics';
COMMENT ON FUNCTION salesmgmt.kpi_metrics() IS 'The built-in metrics a KPI can measure: unit, usual direction, definition, and when a rep has no data for it.';

CREATE FUNCTION salesmgmt.compute_scorecards(p_scheme_id bigint, p_period_start date, p_period_end date)
RETURNS TABLE (rep_id bigint, score numeric, grade text, rank integer, details jsonb)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'sm_compute_scorecards';
COMMENT ON FUNCTION salesmgmt.compute_scorecards(bigint, date, date) IS 'Computes every KPI of a scheme for every rep over a period (inclusive dates) in one pass, scores, grades and ranks the reps, stores the result in salesmgmt.scorecard and scorecard_item (replacing an earlier computation of the same period) and returns it, best first.';

-- salesmgmt.grant_recognitions: the top of a stored scorecard gets a
-- recognition (ties at the cut-off rank are all included).
CREATE FUNCTION salesmgmt.grant_recognitions(p_scheme_id bigint, p_period_start date, p_period_end date,
                                             p_top integer, p_kind text, p_title text,
                                             p_amount numeric DEFAULT NULL, p_currency char(3) DEFAULT NULL,
                                             p_granted_by bigint DEFAULT NULL)
RETURNS SETOF salesmgmt.recognition
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_scheme_id IS NULL OR p_period_start IS NULL OR p_period_end IS NULL OR p_top IS NULL
       OR p_kind IS NULL OR p_title IS NULL THEN
        RAISE EXCEPTION 'scheme, period, top, kind and title must not be null' USING ERRCODE = '22004';
    END IF;
    IF p_top < 1 THEN
        RAISE EXCEPTION 'top must be at least 1, not %', p_top USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.scorecard s
                    WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start
                      AND s.period_end = p_period_end) THEN
        RAISE EXCEPTION 'no scorecards of scheme % for % to %', p_scheme_id, p_period_start, p_period_end
            USING ERRCODE = '55000',
                  HINT = 'Compute them first with salesmgmt.compute_scorecards.';
    END IF;
    RETURN QUERY
    INSERT INTO salesmgmt.recognition (rep_id, kind, title, period_start, amount, currency, reason, granted_by)
    SELECT s.rep_id, p_kind, p_title, p_period_start, p_amount,
           CASE WHEN p_amount IS NOT NULL THEN coalesce(p_currency, current_setting('salesmgmt.reporting_currency')) END,
           format('rank %s of %s (score %s, grade %s)', s.rank,
                  (SELECT k.name FROM salesmgmt.kpi_scheme k WHERE k.scheme_id = p_scheme_id), s.score, s.grade),
           p_granted_by
      FROM salesmgmt.scorecard s
     WHERE s.scheme_id = p_scheme_id AND s.period_start = p_period_start AND s.period_end = p_period_end
       AND s.rank <= p_top
     ORDER BY s.rank, s.rep_id
    RETURNING *;
END
$$;
COMMENT ON FUNCTION salesmgmt.grant_recognitions(bigint, date, date, integer, text, text, numeric, char, bigint) IS 'Grants a recognition (award, badge, promotion or bonus) to every rep ranked p_top or better in the stored scorecards of a scheme and period; returns the rows added.';

-- ---------------------------------------------------------------------------
-- Views
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.leaderboard AS
SELECT s.scheme_id,
       k.name AS scheme_name,
       s.period_start,
       s.period_end,
       s.rank,
       s.rep_id,
       r.name AS rep_name,
       r.team_id,
       t.name AS team_name,
       s.score,
       s.grade,
       s.coverage,
       coalesce((SELECT array_agg(rc.kind || ': ' || rc.title ORDER BY rc.granted_at, rc.recognition_id)
                   FROM salesmgmt.recognition rc
                  WHERE rc.rep_id = s.rep_id
                    AND rc.period_start BETWEEN s.period_start AND s.period_end), '{}') AS recognitions,
       s.computed_at
  FROM salesmgmt.kpi_scheme k
  CROSS JOIN LATERAL (SELECT l.period_start, l.period_end
                        FROM salesmgmt.scorecard l
                       WHERE l.scheme_id = k.scheme_id
                       ORDER BY l.period_end DESC, l.period_start DESC
                       LIMIT 1) latest
  JOIN salesmgmt.scorecard s
    ON s.scheme_id = k.scheme_id AND s.period_start = latest.period_start AND s.period_end = latest.period_end
  JOIN salesmgmt.rep r ON r.rep_id = s.rep_id
  LEFT JOIN salesmgmt.team t ON t.team_id = r.team_id;
COMMENT ON VIEW salesmgmt.leaderboard IS 'For every scheme, the scorecards of its latest computed period (the one ending last) with rank, grade and the recognitions granted for that period.';
COMMENT ON COLUMN salesmgmt.leaderboard.scheme_id IS 'Scheme.';
COMMENT ON COLUMN salesmgmt.leaderboard.scheme_name IS 'Name of the scheme.';
COMMENT ON COLUMN salesmgmt.leaderboard.period_start IS 'First day of the period.';
COMMENT ON COLUMN salesmgmt.leaderboard.period_end IS 'Last day of the period.';
COMMENT ON COLUMN salesmgmt.leaderboard.rank IS 'Rank, 1 = best; ties share a rank; null without a score.';
COMMENT ON COLUMN salesmgmt.leaderboard.rep_id IS 'Rep.';
COMMENT ON COLUMN salesmgmt.leaderboard.rep_name IS 'Name of the rep.';
COMMENT ON COLUMN salesmgmt.leaderboard.team_id IS 'Current team of the rep.';
COMMENT ON COLUMN salesmgmt.leaderboard.team_name IS 'Name of the team.';
COMMENT ON COLUMN salesmgmt.leaderboard.score IS 'Weighted score.';
COMMENT ON COLUMN salesmgmt.leaderboard.grade IS 'Grade.';
COMMENT ON COLUMN salesmgmt.leaderboard.coverage IS 'Share of the scheme''s weight that had data (100 = every KPI).';
COMMENT ON COLUMN salesmgmt.leaderboard.recognitions IS 'Recognitions of the rep for the period ("kind: title"), in the order granted; recognitions whose period_start falls in the period.';
COMMENT ON COLUMN salesmgmt.leaderboard.computed_at IS 'When the scorecard was computed.';

-- Straight-line pacing of each quota: the share of the quota won so far
-- against the share of the period elapsed (days before today).  A team's
-- quota is attained by the reps of the team and of its sub-teams.
CREATE VIEW salesmgmt.target_pacing AS
SELECT q.quota_id,
       q.rep_id,
       q.team_id,
       q.period_start,
       q.period_end,
       q.amount,
       q.currency,
       a.attained,
       p.elapsed_pct,
       round(q.amount * p.elapsed_pct / 100, 2) AS expected,
       g.attained_pct,
       g.attained_pct - p.elapsed_pct AS gap_points,
       CASE WHEN g.attained_pct IS NULL OR g.attained_pct >= p.elapsed_pct THEN 'on_track'
            WHEN g.attained_pct > p.elapsed_pct - 10 THEN 'cautioned'
            ELSE 'off_track' END AS status
  FROM salesmgmt.quota q
  CROSS JOIN LATERAL (
        SELECT round(least(greatest(current_date - q.period_start, 0), q.period_end - q.period_start + 1)::numeric
                     * 100 / (q.period_end - q.period_start + 1), 2) AS elapsed_pct) p
  CROSS JOIN LATERAL (
        WITH RECURSIVE teams(team_id) AS (
            SELECT q.team_id WHERE q.team_id IS NOT NULL
            UNION
            SELECT t.team_id FROM salesmgmt.team t JOIN teams ON t.parent_team_id = teams.team_id
        ), reps(rep_id) AS (
            SELECT q.rep_id WHERE q.rep_id IS NOT NULL
            UNION ALL
            SELECT r.rep_id FROM salesmgmt.rep r JOIN teams ON r.team_id = teams.team_id
        ), credit(amount, currency, closed_at) AS (
            -- deals without splits credit their owner in full
            SELECT d.amount, d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal d ON d.owner_rep_id = reps.rep_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= q.period_start::timestamptz
               AND d.closed_at < (q.period_end + 1)::timestamptz
               AND NOT EXISTS (SELECT 1 FROM salesmgmt.deal_split sp WHERE sp.deal_id = d.deal_id)
            UNION ALL
            SELECT d.amount * sp.share, d.currency, d.closed_at
              FROM reps
              JOIN salesmgmt.deal_split sp ON sp.rep_id = reps.rep_id
              JOIN salesmgmt.deal d ON d.deal_id = sp.deal_id
              JOIN salesmgmt.stage st ON st.stage_id = d.stage_id AND st.outcome = 'won'
             WHERE d.closed_at >= q.period_start::timestamptz
               AND d.closed_at < (q.period_end + 1)::timestamptz
        )
        SELECT round(coalesce(sum(CASE WHEN c.currency = q.currency THEN c.amount
                                       ELSE salesmgmt.convert_amount(c.amount, c.currency, q.currency, c.closed_at::date) END),
                              0), 2) AS attained
          FROM credit c) a
  CROSS JOIN LATERAL (
        SELECT CASE WHEN q.amount > 0 THEN round(a.attained * 100 / q.amount, 2) END AS attained_pct) g;
COMMENT ON VIEW salesmgmt.target_pacing IS 'Each quota: won so far against the straight-line expectation for the elapsed share of its period; status on_track, cautioned (behind) or off_track (10 points or more behind).';
COMMENT ON COLUMN salesmgmt.target_pacing.quota_id IS 'Quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.rep_id IS 'Rep of a rep quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.team_id IS 'Team of a team quota (its sub-teams'' reps count too).';
COMMENT ON COLUMN salesmgmt.target_pacing.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.target_pacing.period_end IS 'Last day of the quota period.';
COMMENT ON COLUMN salesmgmt.target_pacing.amount IS 'Quota amount.';
COMMENT ON COLUMN salesmgmt.target_pacing.currency IS 'Currency of the quota; attained and expected are in it.';
COMMENT ON COLUMN salesmgmt.target_pacing.attained IS 'Won so far: credited amounts of deals won in the period, converted at each deal''s close date.';
COMMENT ON COLUMN salesmgmt.target_pacing.elapsed_pct IS 'Share of the period elapsed, in percent: days before today over days of the period (0 before it starts, 100 after it ends).';
COMMENT ON COLUMN salesmgmt.target_pacing.expected IS 'Straight-line expectation: amount x elapsed share.';
COMMENT ON COLUMN salesmgmt.target_pacing.attained_pct IS 'Attained in percent of the quota; null for a zero quota.';
COMMENT ON COLUMN salesmgmt.target_pacing.gap_points IS 'attained_pct - elapsed_pct in percentage points; negative when behind.';
COMMENT ON COLUMN salesmgmt.target_pacing.status IS 'on_track (at or ahead of the line), cautioned (behind by less than 10 points) or off_track (10 points or more behind).';

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.review', 'salesmgmt.csat_response', 'salesmgmt.training_course',
    'salesmgmt.training_enrollment', 'salesmgmt.recognition', 'salesmgmt.kpi',
    'salesmgmt.kpi_scheme', 'salesmgmt.kpi_scheme_item', 'salesmgmt.scorecard',
    'salesmgmt.scorecard_item']) AS t;

-- ===== src/webhook.sql =====
-- webhook.sql: webhooks on deal events (data analysis and feedback pillar:
-- push what happens to deals to the systems that react to it).
--
-- A transactional outbox: an AFTER trigger on salesmgmt.deal (C, in
-- webhook.c) writes one webhook_event row and one webhook_delivery row per
-- subscribed active endpoint inside the transaction that changed the deal,
-- so a rolled-back change sends nothing and a committed one is never lost.
-- A background worker (webhook_worker.c) claims due deliveries, sends them
-- signed over HTTP(S) and records every attempt.  See docs/webhooks.md.

-- ---------------------------------------------------------------------------
-- C helpers
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.webhook_generate_secret() RETURNS text
LANGUAGE C VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_webhook_generate_secret';
COMMENT ON FUNCTION salesmgmt.webhook_generate_secret() IS 'A new endpoint secret: "whsec_" followed by the base64 of 32 random bytes from the server''s strong random source.';

CREATE FUNCTION salesmgmt.webhook_sign(p_secret text, p_event_id text, p_timestamp bigint, p_body text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_webhook_sign';
COMMENT ON FUNCTION salesmgmt.webhook_sign(text, text, bigint, text) IS 'Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of event_id.timestamp.body under a "whsec_" secret (the key is the base64-decoded part after the prefix); what the worker sends in webhook-signature.';

CREATE FUNCTION salesmgmt.webhook_new_event_id() RETURNS uuid
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sm_webhook_new_event_id';
COMMENT ON FUNCTION salesmgmt.webhook_new_event_id() IS 'A new event id: a version 7 UUID (time-ordered, RFC 9562), so that event ids sort by creation time and their indexes grow at one end.';

REVOKE ALL ON FUNCTION salesmgmt.webhook_generate_secret() FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.webhook_sign(text, text, bigint, text) FROM PUBLIC;

CREATE FUNCTION salesmgmt._webhook_endpoint_check() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sm_webhook_endpoint_check';
COMMENT ON FUNCTION salesmgmt._webhook_endpoint_check() IS 'Internal trigger: validates an endpoint''s URL, secret and event types before it is stored.';

CREATE FUNCTION salesmgmt._webhook_cache_invalidate() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sm_webhook_cache_invalidate';
COMMENT ON FUNCTION salesmgmt._webhook_cache_invalidate() IS 'Internal trigger: tells every session that endpoints or stages changed, so the deal trigger reloads what it keeps of them.';

CREATE FUNCTION salesmgmt._webhook_enqueue() RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'sm_webhook_enqueue';
COMMENT ON FUNCTION salesmgmt._webhook_enqueue() IS 'Internal trigger on salesmgmt.deal: writes the deal event and its deliveries to the outbox in the changing transaction.';

CREATE FUNCTION salesmgmt._webhook_wake() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'sm_webhook_wake';
COMMENT ON FUNCTION salesmgmt._webhook_wake() IS 'Internal: wake the database''s webhook worker when the current transaction commits.';
REVOKE ALL ON FUNCTION salesmgmt._webhook_wake() FROM PUBLIC;

CREATE FUNCTION salesmgmt._webhook_refuse_private_literal(p_url text) RETURNS void
LANGUAGE C STABLE STRICT
AS 'MODULE_PATHNAME', 'sm_webhook_refuse_private_literal';
COMMENT ON FUNCTION salesmgmt._webhook_refuse_private_literal(text) IS 'Internal: raises an error when the URL''s host is an IP address in a private, loopback, link-local or otherwise non-public range and salesmgmt.webhook_allow_private_networks is off.';
REVOKE ALL ON FUNCTION salesmgmt._webhook_refuse_private_literal(text) FROM PUBLIC;

CREATE FUNCTION salesmgmt.webhook_worker_start() RETURNS integer
LANGUAGE C VOLATILE STRICT
AS 'MODULE_PATHNAME', 'sm_webhook_worker_start';
COMMENT ON FUNCTION salesmgmt.webhook_worker_start() IS 'Starts the webhook background worker for the current database unless one runs already; returns its process id.';
REVOKE ALL ON FUNCTION salesmgmt.webhook_worker_start() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Endpoints
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.webhook_endpoint (
    endpoint_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    url             text NOT NULL,
    secret          text NOT NULL DEFAULT salesmgmt.webhook_generate_secret(),
    event_types     text[],
    active          boolean NOT NULL DEFAULT true,
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_reason text,
    disabled_at     timestamptz,
    CONSTRAINT webhook_endpoint_disabled_reason CHECK (active OR disabled_reason IS NOT NULL)
);
COMMENT ON TABLE salesmgmt.webhook_endpoint IS 'Receivers of deal events: an HTTP(S) URL, the secret deliveries are signed with, and the event types it subscribes to. Readable by administrators only.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.endpoint_id IS 'Identity of the endpoint.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.url IS 'Where deliveries are POSTed: an http or https URL without user name or password.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.secret IS 'Signing secret, "whsec_" + base64 of 24 to 64 bytes; the receiver verifies webhook-signature with it.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.event_types IS 'Event types the endpoint receives (see docs/webhooks.md); null receives all of them.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.active IS 'False: no new deliveries are created and waiting ones are held until it is active again.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.description IS 'Free text: what the receiver is.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.created_at IS 'When the endpoint was created.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.disabled_reason IS 'Why the endpoint is inactive (e.g. the receiver answered 410 Gone); cleared when it is activated again.';
COMMENT ON COLUMN salesmgmt.webhook_endpoint.disabled_at IS 'When the endpoint was made inactive.';

-- An inactive endpoint needs a reason; deactivating without one records a
-- generic reason, reactivating clears it.
CREATE TRIGGER webhook_endpoint_check
    BEFORE INSERT OR UPDATE ON salesmgmt.webhook_endpoint
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._webhook_endpoint_check();
CREATE TRIGGER webhook_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.webhook_endpoint
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_cache_invalidate();

-- ---------------------------------------------------------------------------
-- The outbox: events, deliveries, attempts
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.webhook_event (
    event_id    uuid NOT NULL DEFAULT salesmgmt.webhook_new_event_id() PRIMARY KEY,
    event_type  text NOT NULL
                CONSTRAINT webhook_event_type_valid CHECK (event_type IN (
                    'deal.created', 'deal.updated', 'deal.stage_changed', 'deal.won',
                    'deal.lost', 'deal.reopened', 'deal.deleted', 'webhook.ping')),
    deal_id     bigint,
    sequence    bigint,
    payload     json NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_event_deal_sequence UNIQUE (deal_id, sequence),
    CONSTRAINT webhook_event_deal_or_ping
        CHECK ((event_type = 'webhook.ping') = (deal_id IS NULL) AND (deal_id IS NULL) = (sequence IS NULL))
);
COMMENT ON TABLE salesmgmt.webhook_event IS 'Deal events written by the deal trigger in the changing transaction (only when an active endpoint subscribes to the type), and pings; payload is the exact body that is sent and signed.';
COMMENT ON COLUMN salesmgmt.webhook_event.event_id IS 'UUID of the event, sent as webhook-id; the same on every retry so receivers can deduplicate.';
COMMENT ON COLUMN salesmgmt.webhook_event.event_type IS 'deal.created, deal.updated, deal.stage_changed, deal.won, deal.lost, deal.reopened, deal.deleted, or webhook.ping.';
COMMENT ON COLUMN salesmgmt.webhook_event.deal_id IS 'Deal the event is about (the event stays after the deal is deleted); null for pings.';
COMMENT ON COLUMN salesmgmt.webhook_event.sequence IS 'Per-deal number, increasing by one with each event of the deal; receivers order a deal''s events by it.';
COMMENT ON COLUMN salesmgmt.webhook_event.payload IS 'JSON body sent to the endpoints: {"type", "timestamp", "data": {"deal", "previous", "sequence"}}.';
COMMENT ON COLUMN salesmgmt.webhook_event.occurred_at IS 'When the change happened (the changing transaction''s timestamp).';

CREATE TABLE salesmgmt.webhook_delivery (
    delivery_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL,
    endpoint_id     bigint NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CONSTRAINT webhook_delivery_state_valid
                    CHECK (state IN ('pending', 'in_flight', 'delivered', 'failed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0
                    CONSTRAINT webhook_delivery_attempts_nonnegative CHECK (attempts >= 0),
    retry_step      integer NOT NULL DEFAULT 0
                    CONSTRAINT webhook_delivery_retry_step_nonnegative CHECK (retry_step >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    claimed_by      integer,
    CONSTRAINT webhook_delivery_delivered_at CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- The queue: only rows that may still be sent are indexed, so the index
-- stays as small as the backlog however many deliveries are kept.
CREATE INDEX webhook_delivery_queue ON salesmgmt.webhook_delivery (next_attempt_at)
    WHERE state IN ('pending', 'failed', 'in_flight');
CREATE INDEX ON salesmgmt.webhook_delivery (event_id);
COMMENT ON TABLE salesmgmt.webhook_delivery IS 'One row per event and endpoint: the delivery''s state, attempts and next attempt. No foreign keys, so that concurrent writers never lock the endpoint row; deleting an endpoint or event deletes its deliveries through triggers.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.delivery_id IS 'Identity of the delivery.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.event_id IS 'Event delivered (salesmgmt.webhook_event).';
COMMENT ON COLUMN salesmgmt.webhook_delivery.endpoint_id IS 'Endpoint delivered to (salesmgmt.webhook_endpoint).';
COMMENT ON COLUMN salesmgmt.webhook_delivery.state IS 'pending (not tried yet, or sent back after a worker stopped), in_flight (claimed by a worker, lease until next_attempt_at), delivered (2xx), failed (will retry at next_attempt_at), dead (retries exhausted or 410 Gone; salesmgmt.webhook_retry sends it again).';
COMMENT ON COLUMN salesmgmt.webhook_delivery.attempts IS 'Attempts made so far; also numbers the rows of salesmgmt.webhook_attempt.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.retry_step IS 'Position in salesmgmt.webhook_retry_schedule of the next retry delay; reset by salesmgmt.webhook_retry.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.next_attempt_at IS 'pending/failed: when it is due (infinity while the endpoint is inactive); in_flight: when the worker''s lease expires.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.last_status IS 'HTTP status of the last attempt; null if no response was received.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.last_error IS 'Why the last attempt failed (connection error, timeout, refused address, redirect, non-2xx status); null after success.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.delivered_at IS 'When the receiver answered 2xx.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.created_at IS 'When the delivery was created: in the changing transaction, or by a replay or ping.';
COMMENT ON COLUMN salesmgmt.webhook_delivery.claimed_by IS 'Process id of the worker holding the in-flight lease.';

CREATE TABLE salesmgmt.webhook_attempt (
    delivery_id bigint NOT NULL,
    attempt     integer NOT NULL,
    endpoint_id bigint NOT NULL,
    started_at  timestamptz NOT NULL,
    duration    interval,
    status      integer,
    error       text,
    response    text,
    PRIMARY KEY (delivery_id, attempt)
);
COMMENT ON TABLE salesmgmt.webhook_attempt IS 'Every attempt of every delivery: status, error and duration. Append-only; purged with delivered deliveries after salesmgmt.webhook_retention.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.delivery_id IS 'Delivery attempted.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.attempt IS 'Number of the attempt, from 1.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.endpoint_id IS 'Endpoint attempted.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.started_at IS 'When the request was started.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.duration IS 'Time from the start of the request to the response or the error; null when the outcome is unknown.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.status IS 'HTTP status received; null if none.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.error IS 'Why the attempt failed; null for a 2xx.';
COMMENT ON COLUMN salesmgmt.webhook_attempt.response IS 'First bytes (at most 256) of the response body, for diagnosis.';

-- Deleting an endpoint or an event deletes its deliveries, deleting a
-- delivery its attempts (statement triggers: no foreign key checks on the
-- hot insert path).
CREATE FUNCTION salesmgmt._webhook_cascade_delete() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'webhook_endpoint' THEN
        DELETE FROM salesmgmt.webhook_delivery d USING gone g WHERE d.endpoint_id = g.endpoint_id;
    ELSIF TG_TABLE_NAME = 'webhook_event' THEN
        DELETE FROM salesmgmt.webhook_delivery d USING gone g WHERE d.event_id = g.event_id;
    ELSE
        DELETE FROM salesmgmt.webhook_attempt a USING gone g WHERE a.delivery_id = g.delivery_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION salesmgmt._webhook_cascade_delete() IS 'Internal trigger: deletes the deliveries of deleted endpoints and events, and the attempts of deleted deliveries.';
CREATE TRIGGER webhook_endpoint_cascade AFTER DELETE ON salesmgmt.webhook_endpoint
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_cascade_delete();
CREATE TRIGGER webhook_event_cascade AFTER DELETE ON salesmgmt.webhook_event
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_cascade_delete();
CREATE TRIGGER webhook_delivery_cascade AFTER DELETE ON salesmgmt.webhook_delivery
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_cascade_delete();

-- Deactivating an endpoint holds its waiting deliveries (due at infinity,
-- so the worker's queue scan never meets them); activating it again makes
-- them due now.
CREATE FUNCTION salesmgmt._webhook_endpoint_hold() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE salesmgmt.webhook_delivery
       SET next_attempt_at = CASE WHEN NEW.active THEN now() ELSE 'infinity' END
     WHERE endpoint_id = NEW.endpoint_id AND state IN ('pending', 'failed');
    IF NEW.active THEN
        PERFORM salesmgmt._webhook_wake();
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION salesmgmt._webhook_endpoint_hold() IS 'Internal trigger: holds the waiting deliveries of an endpoint made inactive and releases them when it is active again.';
CREATE TRIGGER webhook_endpoint_hold AFTER UPDATE OF active ON salesmgmt.webhook_endpoint
    FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active)
    EXECUTE FUNCTION salesmgmt._webhook_endpoint_hold();

-- The deal trigger keeps the outcome of every stage (won, lost, open) in
-- a per-session cache; a change to the stages drops it.
CREATE TRIGGER webhook_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON salesmgmt.stage
    FOR EACH STATEMENT EXECUTE FUNCTION salesmgmt._webhook_cache_invalidate();

-- The deal events: after the pipeline's own triggers have settled the row.
CREATE TRIGGER webhook_enqueue
    AFTER INSERT OR UPDATE OR DELETE ON salesmgmt.deal
    FOR EACH ROW EXECUTE FUNCTION salesmgmt._webhook_enqueue();

SELECT salesmgmt._register_config_table(t::regclass) FROM unnest(ARRAY[
    'salesmgmt.webhook_endpoint', 'salesmgmt.webhook_event',
    'salesmgmt.webhook_delivery', 'salesmgmt.webhook_attempt']) AS t;

-- ---------------------------------------------------------------------------
-- Functions for administrators
-- ---------------------------------------------------------------------------

CREATE FUNCTION salesmgmt.create_webhook(p_url text, p_event_types text[] DEFAULT NULL,
                                         p_secret text DEFAULT NULL, p_description text DEFAULT NULL)
RETURNS salesmgmt.webhook_endpoint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_endpoint salesmgmt.webhook_endpoint;
BEGIN
    IF p_url IS NULL THEN
        RAISE EXCEPTION 'webhook URL must not be null' USING ERRCODE = '22004';
    END IF;
    -- the endpoint trigger checks the URL's form, the secret and the event
    -- types; a literal private address is refused here, at creation, while
    -- names are checked on the address actually connected to
    INSERT INTO salesmgmt.webhook_endpoint (url, event_types, secret, description)
    VALUES (p_url, p_event_types, coalesce(p_secret, salesmgmt.webhook_generate_secret()), p_description)
    RETURNING * INTO v_endpoint;
    PERFORM salesmgmt._webhook_refuse_private_literal(p_url);
    RETURN v_endpoint;
END
$$;
COMMENT ON FUNCTION salesmgmt.create_webhook(text, text[], text, text) IS 'Creates an endpoint: validates the URL (http or https, no credentials), the event types (null = all) and the secret (generated when null) and returns the new row, secret included.';

-- The claim: due deliveries of active endpoints, oldest first, locked with
-- SKIP LOCKED so concurrent claimers take disjoint rows, marked in flight
-- with a lease until now() + p_lease.  The worker calls this and commits
-- before it sends anything.
CREATE FUNCTION salesmgmt._webhook_claim(p_limit integer, p_lease interval)
RETURNS TABLE (delivery_id bigint, attempt integer, retry_step integer, endpoint_id bigint,
               event_id uuid, url text, secret text, payload text)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT d.delivery_id
          FROM salesmgmt.webhook_delivery d
         WHERE d.state IN ('pending', 'failed') AND d.next_attempt_at <= now()
           AND EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint e
                        WHERE e.endpoint_id = d.endpoint_id AND e.active)
         ORDER BY d.next_attempt_at
         LIMIT p_limit
           FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE salesmgmt.webhook_delivery d
       SET state = 'in_flight', attempts = d.attempts + 1,
           next_attempt_at = now() + p_lease, claimed_by = pg_backend_pid()
      FROM due, salesmgmt.webhook_event ev, salesmgmt.webhook_endpoint ep
     WHERE d.delivery_id = due.delivery_id AND ev.event_id = d.event_id
       AND ep.endpoint_id = d.endpoint_id
    RETURNING d.delivery_id, d.attempts, d.retry_step, d.endpoint_id, d.event_id,
              ep.url, ep.secret, ev.payload::text
$$;
COMMENT ON FUNCTION salesmgmt._webhook_claim(integer, interval) IS 'Internal: claims up to p_limit due deliveries for the calling worker (in flight, lease p_lease) and returns what is needed to send them.';
REVOKE ALL ON FUNCTION salesmgmt._webhook_claim(integer, interval) FROM PUBLIC;

CREATE FUNCTION salesmgmt.webhook_retry(p_delivery_id bigint)
RETURNS salesmgmt.webhook_delivery
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v salesmgmt.webhook_delivery;
BEGIN
    IF p_delivery_id IS NULL THEN
        RAISE EXCEPTION 'delivery id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO v FROM salesmgmt.webhook_delivery WHERE delivery_id = p_delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook delivery % does not exist', p_delivery_id
            USING ERRCODE = '42704', HINT = 'Find deliveries in salesmgmt.webhook_delivery.';
    END IF;
    IF v.state = 'delivered' THEN
        RAISE EXCEPTION 'webhook delivery % was already delivered', p_delivery_id
            USING ERRCODE = 'SM040',
                  DETAIL = format('The receiver answered %s at %s.', v.last_status, v.delivered_at),
                  HINT = format('To send the event again, use salesmgmt.webhook_replay(%L, %s).', v.event_id, v.endpoint_id);
    ELSIF v.state = 'in_flight' THEN
        RAISE EXCEPTION 'webhook delivery % is being sent right now', p_delivery_id
            USING ERRCODE = 'SM040',
                  DETAIL = format('Worker process %s holds it until %s.', v.claimed_by, v.next_attempt_at),
                  HINT = 'Wait for the outcome; the worker records it in a moment.';
    END IF;
    UPDATE salesmgmt.webhook_delivery
       SET state = 'pending', retry_step = 0,
           next_attempt_at = CASE WHEN (SELECT active FROM salesmgmt.webhook_endpoint e
                                         WHERE e.endpoint_id = v.endpoint_id)
                                  THEN now() ELSE 'infinity' END
     WHERE delivery_id = p_delivery_id
    RETURNING * INTO v;
    PERFORM salesmgmt._webhook_wake();
    RETURN v;
END
$$;
COMMENT ON FUNCTION salesmgmt.webhook_retry(bigint) IS 'Sends a failed or dead delivery again now, with a fresh retry schedule; SM040 if it was delivered (use webhook_replay) or is in flight.';

CREATE FUNCTION salesmgmt.webhook_replay(p_event_id uuid, p_endpoint_id bigint DEFAULT NULL)
RETURNS SETOF salesmgmt.webhook_delivery
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text;
BEGIN
    IF p_event_id IS NULL THEN
        RAISE EXCEPTION 'event id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT event_type INTO v_type FROM salesmgmt.webhook_event WHERE event_id = p_event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook event % does not exist', p_event_id
            USING ERRCODE = '42704',
                  HINT = 'Events are kept while they have deliveries; delivered ones are purged after salesmgmt.webhook_retention.';
    END IF;
    IF p_endpoint_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM salesmgmt.webhook_endpoint WHERE endpoint_id = p_endpoint_id) THEN
            RAISE EXCEPTION 'webhook endpoint % does not exist', p_endpoint_id
                USING ERRCODE = '42704', HINT = 'List endpoints in salesmgmt.webhook_endpoint.';
        END IF;
        IF NOT (SELECT active FROM salesmgmt.webhook_endpoint WHERE endpoint_id = p_endpoint_id) THEN
            RAISE EXCEPTION 'webhook endpoint % is inactive', p_endpoint_id
                USING ERRCODE = 'SM041',
                      DETAIL = (SELECT format('Disabled: %s.', disabled_reason) FROM salesmgmt.webhook_endpoint WHERE endpoint_id = p_endpoint_id),
                      HINT = format('Activate it first: UPDATE salesmgmt.webhook_endpoint SET active = true WHERE endpoint_id = %s.', p_endpoint_id);
        END IF;
    END IF;
    -- without an endpoint: every endpoint that received the event before
    RETURN QUERY
    INSERT INTO salesmgmt.webhook_delivery (event_id, endpoint_id)
    SELECT p_event_id, e.endpoint_id
      FROM salesmgmt.webhook_endpoint e
     WHERE e.active
       AND CASE WHEN p_endpoint_id IS NOT NULL THEN e.endpoint_id = p_endpoint_id
                ELSE EXISTS (SELECT 1 FROM salesmgmt.webhook_delivery d
                              WHERE d.event_id = p_event_id AND d.endpoint_id = e.endpoint_id) END
     ORDER BY e.endpoint_id
    RETURNING *;
    PERFORM salesmgmt._webhook_wake();
END
$$;
COMMENT ON FUNCTION salesmgmt.webhook_replay(uuid, bigint) IS 'Sends an event again as a new delivery, to one endpoint or (null) to every active endpoint it was delivered to before; same webhook-id, so receivers can deduplicate.';

CREATE FUNCTION salesmgmt.webhook_ping(p_endpoint_id bigint)
RETURNS salesmgmt.webhook_delivery
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_ep salesmgmt.webhook_endpoint;
    v_event uuid := salesmgmt.webhook_new_event_id();
    v_now timestamptz := now();
    v salesmgmt.webhook_delivery;
BEGIN
    IF p_endpoint_id IS NULL THEN
        RAISE EXCEPTION 'endpoint id must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO v_ep FROM salesmgmt.webhook_endpoint WHERE endpoint_id = p_endpoint_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'webhook endpoint % does not exist', p_endpoint_id
            USING ERRCODE = '42704', HINT = 'List endpoints in salesmgmt.webhook_endpoint.';
    END IF;
    IF NOT v_ep.active THEN
        RAISE EXCEPTION 'webhook endpoint % is inactive', p_endpoint_id
            USING ERRCODE = 'SM041', DETAIL = format('Disabled: %s.', v_ep.disabled_reason),
                  HINT = format('Activate it first: UPDATE salesmgmt.webhook_endpoint SET active = true WHERE endpoint_id = %s.', p_endpoint_id);
    END IF;
    INSERT INTO salesmgmt.webhook_event (event_id, event_type, payload, occurred_at)
    VALUES (v_event, 'webhook.ping',
            json_build_object('type', 'webhook.ping',
                              'timestamp', to_char(v_now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
                              'data', json_build_object('endpoint_id', p_endpoint_id)),
            v_now);
    INSERT INTO salesmgmt.webhook_delivery (event_id, endpoint_id)
    VALUES (v_event, p_endpoint_id)
    RETURNING * INTO v;
    PERFORM salesmgmt._webhook_wake();
    RETURN v;
END
$$;
COMMENT ON FUNCTION salesmgmt.webhook_ping(bigint) IS 'Sends a webhook.ping event to an active endpoint (whatever its event types) and returns the delivery, to test a receiver.';

REVOKE ALL ON FUNCTION salesmgmt.create_webhook(text, text[], text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.webhook_retry(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.webhook_replay(uuid, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION salesmgmt.webhook_ping(bigint) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Observability
-- ---------------------------------------------------------------------------

-- Latency is measured from the commit of the changing transaction when
-- track_commit_timestamp is on, else from the event's time (the start of
-- that transaction); for a replay or a retry-from-dead from the delivery's
-- creation.
CREATE VIEW salesmgmt.webhook_stats AS
WITH lat AS (
    SELECT d.endpoint_id,
           extract(epoch FROM d.delivered_at - greatest(d.created_at,
               CASE WHEN current_setting('track_commit_timestamp')::boolean
                    THEN coalesce(pg_xact_commit_timestamp(ev.xmin), ev.occurred_at)
                    ELSE ev.occurred_at END)) * 1000 AS ms
      FROM salesmgmt.webhook_delivery d
      JOIN salesmgmt.webhook_event ev ON ev.event_id = d.event_id
     WHERE d.state = 'delivered'
), att AS (
    SELECT a.endpoint_id, count(*) AS attempts,
           count(*) FILTER (WHERE a.status BETWEEN 200 AND 299) AS successes
      FROM salesmgmt.webhook_attempt a
     GROUP BY a.endpoint_id
)
SELECT e.endpoint_id, e.url, e.active,
       count(d.*) FILTER (WHERE d.state IN ('pending', 'in_flight')) AS pending,
       count(d.*) FILTER (WHERE d.state = 'delivered') AS delivered,
       count(d.*) FILTER (WHERE d.state = 'failed') AS failed,
       count(d.*) FILTER (WHERE d.state = 'dead') AS dead,
       coalesce(att.attempts, 0) AS attempts,
       round(att.successes::numeric / nullif(att.attempts, 0), 4) AS success_rate,
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY l.ms)::numeric, 1)
          FROM lat l WHERE l.endpoint_id = e.endpoint_id) AS p50_latency_ms,
       (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY l.ms)::numeric, 1)
          FROM lat l WHERE l.endpoint_id = e.endpoint_id) AS p99_latency_ms,
       max(d.delivered_at) AS last_delivered_at
  FROM salesmgmt.webhook_endpoint e
  LEFT JOIN salesmgmt.webhook_delivery d ON d.endpoint_id = e.endpoint_id
  LEFT JOIN att ON att.endpoint_id = e.endpoint_id
 GROUP BY e.endpoint_id, e.url, e.active, att.attempts, att.successes
 ORDER BY e.endpoint_id;
COMMENT ON VIEW salesmgmt.webhook_stats IS 'Per endpoint: deliveries by state, attempts and their success rate, and p50/p99 latency from commit to delivery over the delivered rows still kept.';
COMMENT ON COLUMN salesmgmt.webhook_stats.endpoint_id IS 'Endpoint.';
COMMENT ON COLUMN salesmgmt.webhook_stats.url IS 'Its URL.';
COMMENT ON COLUMN salesmgmt.webhook_stats.active IS 'Whether it is active.';
COMMENT ON COLUMN salesmgmt.webhook_stats.pending IS 'Deliveries waiting for their first attempt or in flight.';
COMMENT ON COLUMN salesmgmt.webhook_stats.delivered IS 'Deliveries answered with 2xx (kept for salesmgmt.webhook_retention).';
COMMENT ON COLUMN salesmgmt.webhook_stats.failed IS 'Deliveries that failed and will be retried.';
COMMENT ON COLUMN salesmgmt.webhook_stats.dead IS 'Deliveries that exhausted their retries or met 410 Gone.';
COMMENT ON COLUMN salesmgmt.webhook_stats.attempts IS 'Attempts recorded.';
COMMENT ON COLUMN salesmgmt.webhook_stats.success_rate IS 'Share of the recorded attempts answered with 2xx.';
COMMENT ON COLUMN salesmgmt.webhook_stats.p50_latency_ms IS 'Median milliseconds from commit to delivery.';
COMMENT ON COLUMN salesmgmt.webhook_stats.p99_latency_ms IS '99th percentile milliseconds from commit to delivery.';
COMMENT ON COLUMN salesmgmt.webhook_stats.last_delivered_at IS 'Time of the latest delivery.';

-- ===== src/analytics.sql =====
-- analytics.sql: the data-analysis-and-feedback pillar, for BI tools.
--
-- Plain SQL views a BI analyst points Metabase, Superset, Grafana or a
-- spreadsheet at: win rates, sales velocity, pipeline coverage, quota
-- attainment, customer value and RFM segments, customer satisfaction,
-- communication records, cohort conversion.  And the feedback loop: the
-- feedback table, its forward-only status workflow and its summary view.
-- Every formula is written out in docs/bi.md.
--
-- Conventions of every view here:
--   * security_invoker: a view reads the underlying tables with the
--     privileges and row-level security of the user who queries it, so a
--     rep sees the figures of the rows they may see, never more.
--   * Money is converted to the reporting currency (the setting
--     salesmgmt.reporting_currency) with the dated rate of the day the money
--     moved: a closed deal on its closed_at date, an open deal today, a
--     payment on its paid_at date, a quota on its period_start; the same
--     rule as salesmgmt.convert_amount, whose error a missing rate raises.
--   * Periods are taken in the session's TimeZone: the quarter of a closed
--     deal is the quarter of its closed_at.
--   * Ratios whose denominator is zero are NULL, never an error.
--   * Views by period are dense where a period without data is an answer
--     (win rates, velocity, satisfaction, cohorts, feedback): every rep or
--     team gets a row for every period from the first one with data to the
--     current one.
--   * level = 'rep' rows credit a rep; level = 'team' rows add up every rep
--     of the team and of all its sub-teams (the team tree, at any depth).
--   * Pre-aggregation first, then joins: no view runs a subquery per row
--     over the deal table.

-- ---------------------------------------------------------------------------
-- Building blocks: reporting currency, rates, team tree, one row per deal
-- ---------------------------------------------------------------------------

-- The reporting currency as SQL sees it.  The setting is defined by the
-- library, which a session that has not called any C function yet has not
-- loaded; current_setting(..., true) then gives the value set with SET or in
-- postgresql.conf, or null, and the setting's default applies.
CREATE FUNCTION salesmgmt.reporting_currency() RETURNS char(3)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT coalesce(nullif(pg_catalog.current_setting('salesmgmt.reporting_currency', true), ''),
                    'USD')::char(3)
$$;
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

-- Reporting units: every rep, and every team with all its sub-teams, each
-- with the reps whose figures it adds up.  The views by rep and team
-- aggregate per rep once, join this to roll the aggregates up, and take
-- the units from it for their rows (a team without reps has rows without
-- a member, so it still gets rows of zeros).
CREATE VIEW salesmgmt.rep_rollup WITH (security_invoker = true) AS
SELECT 'rep'::text AS level, r.rep_id AS unit_id, r.rep_id, r.team_id, r.rep_id AS member_rep_id
  FROM salesmgmt.rep r
UNION ALL
SELECT 'team', tc.ancestor_team_id, NULL, tc.ancestor_team_id, m.rep_id
  FROM salesmgmt.team_closure tc
  LEFT JOIN salesmgmt.rep m ON m.team_id = tc.team_id;
COMMENT ON VIEW salesmgmt.rep_rollup IS 'Reporting units and their members: each rep (level rep) and each team with all its sub-teams (level team), with every rep whose figures the unit adds up.';
COMMENT ON COLUMN salesmgmt.rep_rollup.level IS 'rep or team.';
COMMENT ON COLUMN salesmgmt.rep_rollup.unit_id IS 'rep_id of a rep unit, team_id of a team unit.';
COMMENT ON COLUMN salesmgmt.rep_rollup.rep_id IS 'The rep of a rep unit; null for a team unit.';
COMMENT ON COLUMN salesmgmt.rep_rollup.team_id IS 'The rep''s team (rep unit) or the team (team unit).';
COMMENT ON COLUMN salesmgmt.rep_rollup.member_rep_id IS 'A rep whose figures the unit counts: the rep itself, or each rep of the team and its sub-teams; null for a team without reps.';

CREATE VIEW salesmgmt.deal_facts WITH (security_invoker = true) AS
SELECT d.deal_id, d.account_id, d.owner_rep_id, o.team_id AS owner_team_id,
       d.pipeline_id, d.stage_id, s.outcome,
       d.amount, d.currency,
       CASE WHEN r.rate IS NULL
                 -- no rate: raise convert_amount's error naming pair and day
                 THEN salesmgmt.convert_amount(d.amount, d.currency, salesmgmt.reporting_currency(), x.rate_at::date)
            WHEN r.inverse THEN d.amount / r.rate
            ELSE d.amount * r.rate END AS amount_reporting,
       CASE s.outcome WHEN 'won' THEN 1::numeric WHEN 'lost' THEN 0::numeric
            ELSE coalesce(d.probability, s.probability) END AS probability,
       d.created_at, c.closed_at, d.expected_close_date,
       extract(epoch FROM c.closed_at - d.created_at) / 86400 AS cycle_days
  FROM salesmgmt.deal d
  JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
  LEFT JOIN salesmgmt.rep o ON o.rep_id = d.owner_rep_id
  -- closed_at is kept by the pipeline trigger; a closed deal written
  -- around it still gets a period: the time it entered its closed stage
  CROSS JOIN LATERAL (SELECT CASE WHEN s.outcome <> 'open'
                                  THEN coalesce(d.closed_at, d.stage_entered_at) END AS closed_at) c
  -- the day of the rate: of the close, or today; compared as times, which
  -- is the same and spares a time-zone conversion per candidate rate
  CROSS JOIN LATERAL (SELECT coalesce(c.closed_at, now()) AS rate_at) x
  LEFT JOIN salesmgmt.reporting_rate r
         ON r.currency = d.currency AND x.rate_at >= r.valid_from_at AND x.rate_at < r.valid_until_at;
COMMENT ON VIEW salesmgmt.deal_facts IS 'One row per deal with what the analytics views derive from it: outcome, amount in the reporting currency, effective probability, close time and sales-cycle length.';
COMMENT ON COLUMN salesmgmt.deal_facts.deal_id IS 'The deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.account_id IS 'Customer of the deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.owner_rep_id IS 'Rep who owns the deal; win rates, velocity and cohorts count deals by owner.';
COMMENT ON COLUMN salesmgmt.deal_facts.owner_team_id IS 'Team of the owner (rep.team_id today).';
COMMENT ON COLUMN salesmgmt.deal_facts.pipeline_id IS 'Pipeline of the deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.stage_id IS 'Current stage.';
COMMENT ON COLUMN salesmgmt.deal_facts.outcome IS 'Outcome of the current stage: open, won or lost.';
COMMENT ON COLUMN salesmgmt.deal_facts.amount IS 'Deal amount in its own currency.';
COMMENT ON COLUMN salesmgmt.deal_facts.currency IS 'Currency of amount.';
COMMENT ON COLUMN salesmgmt.deal_facts.amount_reporting IS 'amount in the reporting currency: at the rate of the closed_at date for a closed deal, of today for an open one (unrounded).';
COMMENT ON COLUMN salesmgmt.deal_facts.probability IS 'Effective win probability: 1 won, 0 lost, else the deal''s override or the stage''s probability.';
COMMENT ON COLUMN salesmgmt.deal_facts.created_at IS 'When the deal was created.';
COMMENT ON COLUMN salesmgmt.deal_facts.closed_at IS 'When a won or lost deal closed (deal.closed_at; stage_entered_at if closed_at is missing); null while open. Decides the period of a closed deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.expected_close_date IS 'Expected close date; decides the period of an open deal.';
COMMENT ON COLUMN salesmgmt.deal_facts.cycle_days IS 'Sales cycle of a closed deal in days (closed_at - created_at, fractional); null while open.';

-- ---------------------------------------------------------------------------
-- Win rates
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.win_rates_by WITH (security_invoker = true) AS
WITH closed AS (
    -- per rep, quarter and pipeline, and per rep and quarter (all_pipelines;
    -- its pipeline_key 0 is only a placeholder that joins with a hash)
    SELECT f.owner_rep_id AS rep_id, coalesce(f.pipeline_id, 0) AS pipeline_key,
           grouping(f.pipeline_id) = 1 AS all_pipelines, q.quarter,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'lost') AS lost_deals,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won'), 0) AS won_amount,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'lost'), 0) AS lost_amount
      FROM salesmgmt.deal_facts f
     CROSS JOIN LATERAL (SELECT date_trunc('quarter', f.closed_at)::date AS quarter) q
     WHERE f.outcome <> 'open'
     GROUP BY GROUPING SETS ((f.owner_rep_id, f.pipeline_id, q.quarter), (f.owner_rep_id, q.quarter))
),
rolled AS (
    SELECT 'rep'::text AS level, c.rep_id AS unit_id, c.pipeline_key, c.all_pipelines, c.quarter,
           c.won_deals, c.lost_deals, c.won_amount, c.lost_amount
      FROM closed c
    UNION ALL
    SELECT u.level, u.unit_id, c.pipeline_key, c.all_pipelines, c.quarter,
           sum(c.won_deals), sum(c.lost_deals), sum(c.won_amount), sum(c.lost_amount)
      FROM closed c
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = c.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3, 4, 5
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter
      FROM closed
),
pipelines AS (
    SELECT pipeline_id AS pipeline_key, false AS all_pipelines FROM salesmgmt.pipeline
    UNION ALL
    SELECT 0, true
)
SELECT u.level, u.rep_id, u.team_id, CASE WHEN NOT p.all_pipelines THEN p.pipeline_key END AS pipeline_id, q.quarter,
       coalesce(c.won_deals, 0)::bigint AS won_deals,
       coalesce(c.lost_deals, 0)::bigint AS lost_deals,
       round(c.won_deals / nullif(c.won_deals + c.lost_deals, 0), 4) AS win_rate,
       round(coalesce(c.won_amount, 0), 2) AS won_amount,
       round(coalesce(c.lost_amount, 0), 2) AS lost_amount,
       round(c.won_amount / nullif(c.won_amount + c.lost_amount, 0), 4) AS win_rate_by_amount,
       salesmgmt.reporting_currency() AS currency
  FROM units u
 CROSS JOIN pipelines p
 CROSS JOIN quarters q
  LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.pipeline_key = p.pipeline_key
                    AND c.all_pipelines = p.all_pipelines AND c.quarter = q.quarter;
COMMENT ON VIEW salesmgmt.win_rates_by IS 'Win rate won / (won + lost) of the deals closed in a quarter, by rep, by team (the team and all its sub-teams) and by pipeline (pipeline_id null: all pipelines); every rep and team has a row for every quarter from the first close to the current one.';
COMMENT ON COLUMN salesmgmt.win_rates_by.level IS 'rep: deals owned by rep_id; team: deals owned by any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.win_rates_by.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.win_rates_by.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.win_rates_by.pipeline_id IS 'Pipeline of the deals; null on the row that adds up all pipelines.';
COMMENT ON COLUMN salesmgmt.win_rates_by.quarter IS 'First day of the quarter the deals closed in (closed_at, session time zone).';
COMMENT ON COLUMN salesmgmt.win_rates_by.won_deals IS 'Deals closed won in the quarter.';
COMMENT ON COLUMN salesmgmt.win_rates_by.lost_deals IS 'Deals closed lost in the quarter.';
COMMENT ON COLUMN salesmgmt.win_rates_by.win_rate IS 'won_deals / (won_deals + lost_deals), 4 decimals; null when nothing closed.';
COMMENT ON COLUMN salesmgmt.win_rates_by.won_amount IS 'Sum of the won deals'' amounts in the reporting currency.';
COMMENT ON COLUMN salesmgmt.win_rates_by.lost_amount IS 'Sum of the lost deals'' amounts in the reporting currency.';
COMMENT ON COLUMN salesmgmt.win_rates_by.win_rate_by_amount IS 'won_amount / (won_amount + lost_amount), 4 decimals; null when the sum is zero.';
COMMENT ON COLUMN salesmgmt.win_rates_by.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Sales velocity
-- ---------------------------------------------------------------------------

-- A deal is in play from the quarter it was created in to the quarter it
-- closed in (or today).  Counting that per quarter needs no expansion of
-- deals into quarters: in play(q) = created up to q - closed before q, a
-- running sum over the quarters of each rep.
CREATE VIEW salesmgmt.sales_velocity WITH (security_invoker = true) AS
WITH started AS (
    -- from the deal table itself: counting needs no amounts (deal_facts'
    -- rate join would be wasted); the start is the creation, or the close
    -- if an import recorded it earlier
    SELECT d.owner_rep_id AS rep_id,
           date_trunc('quarter', CASE WHEN s.outcome = 'open' THEN d.created_at
                                      ELSE least(d.created_at, coalesce(d.closed_at, d.stage_entered_at)) END)::date AS quarter,
           count(*) AS started
      FROM salesmgmt.deal d
      JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     GROUP BY 1, 2
),
closed AS (
    SELECT f.owner_rep_id AS rep_id, date_trunc('quarter', f.closed_at)::date AS quarter,
           count(*) AS closed,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'lost') AS lost_deals,
           coalesce(sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won'), 0) AS won_amount,
           coalesce(sum(f.cycle_days) FILTER (WHERE f.outcome = 'won'), 0) AS won_cycle_days
      FROM salesmgmt.deal_facts f
     WHERE f.outcome <> 'open'
     GROUP BY 1, 2
),
events AS (
    SELECT rep_id, quarter, coalesce(s.started, 0) AS started, coalesce(c.closed, 0) AS closed,
           coalesce(c.won_deals, 0) AS won_deals, coalesce(c.lost_deals, 0) AS lost_deals,
           coalesce(c.won_amount, 0) AS won_amount, coalesce(c.won_cycle_days, 0) AS won_cycle_days
      FROM started s
      FULL JOIN closed c USING (rep_id, quarter)
),
rolled AS (
    SELECT 'rep'::text AS level, e.rep_id AS unit_id, e.quarter,
           e.started, e.closed, e.won_deals, e.lost_deals, e.won_amount, e.won_cycle_days
      FROM events e
    UNION ALL
    SELECT u.level, u.unit_id, e.quarter,
           sum(e.started), sum(e.closed), sum(e.won_deals), sum(e.lost_deals),
           sum(e.won_amount), sum(e.won_cycle_days)
      FROM events e
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = e.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
quarters AS (
    SELECT generate_series(min(quarter), greatest(max(quarter), date_trunc('quarter', current_date)::date),
                           interval '3 months')::date AS quarter
      FROM events
),
ratios AS (
    SELECT u.level, u.rep_id, u.team_id, q.quarter,
           (sum(coalesce(c.started, 0) - coalesce(c.closed, 0))
                OVER (PARTITION BY u.level, u.unit_id ORDER BY q.quarter) + coalesce(c.closed, 0))::bigint AS open_deals,
           coalesce(c.won_deals, 0)::bigint AS won_deals,
           coalesce(c.lost_deals, 0)::bigint AS lost_deals,
           c.won_deals / nullif(c.won_deals + c.lost_deals, 0) AS win_rate,
           coalesce(c.won_amount, 0) AS won_amount,
           c.won_amount / nullif(c.won_deals, 0) AS avg_won_amount,
           c.won_cycle_days / nullif(c.won_deals, 0) AS avg_cycle_days
      FROM units u
     CROSS JOIN quarters q
      LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.quarter = q.quarter
)
SELECT level, rep_id, team_id, quarter, open_deals, won_deals, lost_deals,
       round(win_rate, 4) AS win_rate,
       round(won_amount, 2) AS won_amount,
       round(avg_won_amount, 2) AS avg_won_amount,
       round(avg_cycle_days, 2) AS avg_cycle_days,
       round(open_deals * avg_won_amount * win_rate / nullif(avg_cycle_days, 0), 2) AS velocity_per_day,
       salesmgmt.reporting_currency() AS currency
  FROM ratios;
COMMENT ON VIEW salesmgmt.sales_velocity IS 'Sales velocity per rep, team (with all sub-teams) and quarter: open_deals * avg_won_amount * win_rate / avg_cycle_days, the revenue the pipeline makes per day; every rep and team has a row for every quarter from the first deal to the current one.';
COMMENT ON COLUMN salesmgmt.sales_velocity.level IS 'rep: deals owned by rep_id; team: deals owned by any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.sales_velocity.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.sales_velocity.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.sales_velocity.quarter IS 'First day of the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.open_deals IS 'Opportunities in play during the quarter: created before its end and not closed before its start.';
COMMENT ON COLUMN salesmgmt.sales_velocity.won_deals IS 'Deals closed won in the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.lost_deals IS 'Deals closed lost in the quarter.';
COMMENT ON COLUMN salesmgmt.sales_velocity.win_rate IS 'won_deals / (won_deals + lost_deals), 4 decimals; null when nothing closed.';
COMMENT ON COLUMN salesmgmt.sales_velocity.won_amount IS 'Sum of the amounts won in the quarter, reporting currency.';
COMMENT ON COLUMN salesmgmt.sales_velocity.avg_won_amount IS 'won_amount / won_deals; null when nothing was won.';
COMMENT ON COLUMN salesmgmt.sales_velocity.avg_cycle_days IS 'Average days from creation to close of the deals won in the quarter; null when nothing was won.';
COMMENT ON COLUMN salesmgmt.sales_velocity.velocity_per_day IS 'open_deals * avg_won_amount * win_rate / avg_cycle_days (from unrounded factors), reporting currency per day; null when a factor is null or the cycle is zero.';
COMMENT ON COLUMN salesmgmt.sales_velocity.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Quota attainment and pipeline coverage (per quota row)
-- ---------------------------------------------------------------------------

-- Each quota with the reps whose credit counts toward it: the rep of a rep
-- quota, every rep of the team and its sub-teams for a team quota.
CREATE VIEW salesmgmt.quota_rep WITH (security_invoker = true) AS
SELECT q.quota_id, u.member_rep_id AS rep_id, q.period_start, q.period_end
  FROM salesmgmt.quota q
  JOIN salesmgmt.rep_rollup u ON u.level = CASE WHEN q.rep_id IS NOT NULL THEN 'rep' ELSE 'team' END
                             AND u.unit_id = coalesce(q.rep_id, q.team_id)
 WHERE u.member_rep_id IS NOT NULL;
COMMENT ON VIEW salesmgmt.quota_rep IS 'Each quota with the reps whose credited deals count toward it: the rep of a rep quota, every rep of the team and of all its sub-teams for a team quota.';
COMMENT ON COLUMN salesmgmt.quota_rep.quota_id IS 'The quota.';
COMMENT ON COLUMN salesmgmt.quota_rep.rep_id IS 'A rep whose credit counts toward the quota.';
COMMENT ON COLUMN salesmgmt.quota_rep.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.quota_rep.period_end IS 'Last day of the quota period (inclusive).';

-- Won amounts credit reps by their split shares (the owner in full when a
-- deal has no splits), as commissions do.
CREATE VIEW salesmgmt.quota_attainment WITH (security_invoker = true) AS
WITH won_credit AS (
    SELECT coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.closed_at::date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'won'
),
won AS (
    SELECT qr.quota_id, sum(w.amount) AS amount
      FROM salesmgmt.quota_rep qr
      JOIN won_credit w ON w.rep_id = qr.rep_id AND w.day BETWEEN qr.period_start AND qr.period_end
     GROUP BY qr.quota_id
),
figures AS (
    SELECT q.quota_id, q.rep_id, q.team_id, q.period_start, q.period_end,
           CASE WHEN r.rate IS NULL
                THEN salesmgmt.convert_amount(q.amount, q.currency, salesmgmt.reporting_currency(), q.period_start)
                WHEN r.inverse THEN q.amount / r.rate
                ELSE q.amount * r.rate END AS quota_amount,
           coalesce(w.amount, 0) AS won_amount,
           q.period_end - q.period_start + 1 AS period_days,
           least(greatest(current_date - q.period_start + 1, 0), q.period_end - q.period_start + 1) AS elapsed_days
      FROM salesmgmt.quota q
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = q.currency AND q.period_start >= r.valid_from AND q.period_start < r.valid_until
      LEFT JOIN won w ON w.quota_id = q.quota_id
)
SELECT CASE WHEN rep_id IS NOT NULL THEN 'rep' ELSE 'team' END AS level,
       quota_id, rep_id, team_id, period_start, period_end,
       round(quota_amount, 2) AS quota_amount,
       round(won_amount, 2) AS won_amount,
       round(won_amount / nullif(quota_amount, 0), 4) AS attainment,
       round(greatest(quota_amount - won_amount, 0), 2) AS remaining_amount,
       period_days, elapsed_days,
       round(elapsed_days::numeric / period_days, 4) AS elapsed_share,
       round(won_amount * period_days / nullif(quota_amount * elapsed_days, 0), 4) AS pacing,
       round(won_amount * period_days / nullif(elapsed_days, 0), 2) AS projected_amount,
       salesmgmt.reporting_currency() AS currency
  FROM figures;
COMMENT ON VIEW salesmgmt.quota_attainment IS 'Per quota: the amount won in its period so far (credited by split shares; a team quota counts the reps of the team and all sub-teams), attainment won / quota, and pacing: attainment against the share of the period elapsed.';
COMMENT ON COLUMN salesmgmt.quota_attainment.level IS 'rep for a rep''s quota, team for a team''s quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.quota_id IS 'The quota (salesmgmt.quota).';
COMMENT ON COLUMN salesmgmt.quota_attainment.rep_id IS 'Rep of a rep quota; null for a team quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.team_id IS 'Team of a team quota; null for a rep quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_end IS 'Last day of the quota period (inclusive).';
COMMENT ON COLUMN salesmgmt.quota_attainment.quota_amount IS 'Target in the reporting currency (rate of period_start).';
COMMENT ON COLUMN salesmgmt.quota_attainment.won_amount IS 'Credited amount of the deals won with closed_at in the period, reporting currency.';
COMMENT ON COLUMN salesmgmt.quota_attainment.attainment IS 'won_amount / quota_amount, 4 decimals (1 = quota met); null for a zero quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.remaining_amount IS 'quota_amount - won_amount, never below 0.';
COMMENT ON COLUMN salesmgmt.quota_attainment.period_days IS 'Days in the period.';
COMMENT ON COLUMN salesmgmt.quota_attainment.elapsed_days IS 'Days of the period up to and including today (0 before it starts, period_days after it ends).';
COMMENT ON COLUMN salesmgmt.quota_attainment.elapsed_share IS 'elapsed_days / period_days, 4 decimals.';
COMMENT ON COLUMN salesmgmt.quota_attainment.pacing IS 'attainment / elapsed_share, 4 decimals: 1 = on pace to meet the quota exactly; null before the period starts or for a zero quota.';
COMMENT ON COLUMN salesmgmt.quota_attainment.projected_amount IS 'won_amount / elapsed_share: what the period ends with at the pace so far; null before the period starts.';
COMMENT ON COLUMN salesmgmt.quota_attainment.currency IS 'The reporting currency of the amounts.';

CREATE VIEW salesmgmt.pipeline_coverage WITH (security_invoker = true) AS
WITH open_credit AS (
    SELECT coalesce(s.rep_id, f.owner_rep_id) AS rep_id, f.expected_close_date AS day,
           f.amount_reporting * coalesce(s.share, 1) AS amount,
           f.amount_reporting * coalesce(s.share, 1) * f.probability AS weighted
      FROM salesmgmt.deal_facts f
      LEFT JOIN salesmgmt.deal_split s ON s.deal_id = f.deal_id
     WHERE f.outcome = 'open' AND f.expected_close_date >= current_date
),
open AS (
    SELECT qr.quota_id, sum(o.amount) AS amount, sum(o.weighted) AS weighted
      FROM salesmgmt.quota_rep qr
      JOIN open_credit o ON o.rep_id = qr.rep_id
                        AND o.day BETWEEN greatest(qr.period_start, current_date) AND qr.period_end
     GROUP BY qr.quota_id
)
SELECT a.level, a.quota_id, a.rep_id, a.team_id, a.period_start, a.period_end,
       greatest(a.period_end - greatest(a.period_start, current_date) + 1, 0) AS days_left,
       a.quota_amount, a.won_amount, a.remaining_amount,
       round(coalesce(o.amount, 0), 2) AS open_pipeline,
       round(coalesce(o.weighted, 0), 2) AS weighted_pipeline,
       round(coalesce(o.amount, 0) / nullif(a.remaining_amount, 0), 2) AS coverage,
       round(coalesce(o.weighted, 0) / nullif(a.remaining_amount, 0), 2) AS weighted_coverage,
       a.currency
  FROM salesmgmt.quota_attainment a
  LEFT JOIN open o ON o.quota_id = a.quota_id;
COMMENT ON VIEW salesmgmt.pipeline_coverage IS 'Per quota: the open pipeline expected to close in the rest of the period (today to period_end) against the quota still to win; coverage 3 means three times the remaining quota is in the pipeline.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.level IS 'rep for a rep''s quota, team for a team''s quota (counting the reps of the team and all sub-teams).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.quota_id IS 'The quota (salesmgmt.quota).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.rep_id IS 'Rep of a rep quota; null for a team quota.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.team_id IS 'Team of a team quota; null for a rep quota.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.period_start IS 'First day of the quota period.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.period_end IS 'Last day of the quota period (inclusive).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.days_left IS 'Days from today (or period_start if later) to period_end, inclusive; 0 once the period is over.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.quota_amount IS 'Target in the reporting currency (as in quota_attainment).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.won_amount IS 'Credited amount won in the period so far (as in quota_attainment).';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.remaining_amount IS 'quota_amount - won_amount, never below 0.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.open_pipeline IS 'Credited amount of open deals whose expected_close_date falls in the rest of the period, reporting currency at today''s rate.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.weighted_pipeline IS 'The same deals weighted by their effective probability.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.coverage IS 'open_pipeline / remaining_amount, 2 decimals; null when nothing remains to win.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.weighted_coverage IS 'weighted_pipeline / remaining_amount, 2 decimals; null when nothing remains to win.';
COMMENT ON COLUMN salesmgmt.pipeline_coverage.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Customers: value and RFM segments
-- ---------------------------------------------------------------------------

-- An RFM score is the quintile of an account among the accounts that have
-- bought: 1 + floor(5 * (rank - 1) / n) with rank() ascending, so ties get
-- the same score and the best fifth scores 5.
CREATE VIEW salesmgmt.customer_summary WITH (security_invoker = true) AS
WITH deals AS (
    SELECT f.account_id,
           min(f.closed_at) FILTER (WHERE f.outcome = 'won') AS first_purchase_at,
           max(f.closed_at) FILTER (WHERE f.outcome = 'won') AS last_purchase_at,
           count(*) FILTER (WHERE f.outcome = 'won') AS won_deals,
           count(*) FILTER (WHERE f.outcome = 'open') AS open_deals,
           sum(f.amount_reporting) FILTER (WHERE f.outcome = 'won') AS revenue,
           sum(f.amount_reporting) FILTER (WHERE f.outcome = 'open') AS open_pipeline
      FROM salesmgmt.deal_facts f
     GROUP BY f.account_id
),
money AS (
    SELECT d.account_id,
           sum(m.amount) FILTER (WHERE p.kind = 'payment') AS payments,
           sum(m.amount) FILTER (WHERE p.kind = 'refund') AS refunds
      FROM salesmgmt.payment p
      JOIN salesmgmt.deal d ON d.deal_id = p.deal_id
      LEFT JOIN salesmgmt.reporting_rate r
             ON r.currency = p.currency AND p.paid_at >= r.valid_from_at AND p.paid_at < r.valid_until_at
     CROSS JOIN LATERAL (SELECT CASE WHEN r.rate IS NULL
                                     THEN salesmgmt.convert_amount(p.amount, p.currency, salesmgmt.reporting_currency(), p.paid_at::date)
                                     WHEN r.inverse THEN p.amount / r.rate
                                     ELSE p.amount * r.rate END AS amount) m
     GROUP BY d.account_id
),
touch AS (
    SELECT a.account_id, max(a.occurred_at) AS last_activity_at
      FROM salesmgmt.activity a
     WHERE a.occurred_at <= now()
     GROUP BY a.account_id
),
base AS (
    SELECT a.account_id, a.name, a.owner_rep_id,
           d.first_purchase_at, d.last_purchase_at,
           coalesce(d.won_deals, 0) AS won_deals,
           coalesce(d.open_deals, 0) AS open_deals,
           coalesce(d.revenue, 0) AS revenue,
           coalesce(d.open_pipeline, 0) AS open_pipeline,
           coalesce(m.payments, 0) AS payments,
           coalesce(m.refunds, 0) AS refunds,
           coalesce(d.revenue, 0) - coalesce(m.refunds, 0) AS lifetime_value,
           t.last_activity_at
      FROM salesmgmt.account a
      LEFT JOIN deals d ON d.account_id = a.account_id
      LEFT JOIN money m ON m.account_id = a.account_id
      LEFT JOIN touch t ON t.account_id = a.account_id
),
scored AS (
    SELECT b.*,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_recency - 1) / count(*) OVER buyers END AS recency_score,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_frequency - 1) / count(*) OVER buyers END AS frequency_score,
           CASE WHEN b.won_deals > 0 THEN 1 + 5 * (rank() OVER by_monetary - 1) / count(*) OVER buyers END AS monetary_score
      FROM base b
    WINDOW buyers AS (PARTITION BY b.won_deals > 0),
           by_recency AS (PARTITION BY b.won_deals > 0 ORDER BY b.last_purchase_at),
           by_frequency AS (PARTITION BY b.won_deals > 0 ORDER BY b.won_deals),
           by_monetary AS (PARTITION BY b.won_deals > 0 ORDER BY b.lifetime_value)
)
SELECT account_id, name, owner_rep_id,
       first_purchase_at, last_purchase_at, won_deals,
       round(revenue, 2) AS revenue,
       round(payments, 2) AS payments,
       round(refunds, 2) AS refunds,
       round(payments - refunds, 2) AS net_payments,
       round(lifetime_value, 2) AS lifetime_value,
       open_deals,
       round(open_pipeline, 2) AS open_pipeline,
       last_activity_at,
       current_date - last_activity_at::date AS days_since_last_activity,
       current_date - last_purchase_at::date AS days_since_last_purchase,
       recency_score::integer AS recency_score,
       frequency_score::integer AS frequency_score,
       monetary_score::integer AS monetary_score,
       recency_score::text || frequency_score::text || monetary_score::text AS rfm_cell,
       CASE WHEN recency_score IS NULL THEN 'Prospect'
            WHEN recency_score = 5 AND frequency_score >= 4 THEN 'Champions'
            WHEN recency_score >= 3 AND frequency_score >= 4 THEN 'Loyal customers'
            WHEN recency_score = 3 AND frequency_score = 3 THEN 'Need attention'
            WHEN recency_score = 3 THEN 'About to sleep'
            WHEN recency_score >= 4 AND frequency_score >= 2 THEN 'Potential loyalists'
            WHEN recency_score = 5 THEN 'New customers'
            WHEN recency_score = 4 THEN 'Promising'
            WHEN frequency_score = 5 THEN 'Cannot lose them'
            WHEN frequency_score >= 3 THEN 'At risk'
            ELSE 'Hibernating' END AS segment,
       salesmgmt.reporting_currency() AS currency
  FROM scored;
COMMENT ON VIEW salesmgmt.customer_summary IS 'Per account: purchases (won deals), revenue, payments and refunds, lifetime value, recency of contact and purchase, RFM scores 1-5 by quintile among the accounts that bought, and the RFM segment.';
COMMENT ON COLUMN salesmgmt.customer_summary.account_id IS 'The account.';
COMMENT ON COLUMN salesmgmt.customer_summary.name IS 'Account name.';
COMMENT ON COLUMN salesmgmt.customer_summary.owner_rep_id IS 'Rep who owns the relationship.';
COMMENT ON COLUMN salesmgmt.customer_summary.first_purchase_at IS 'closed_at of the first won deal; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.last_purchase_at IS 'closed_at of the latest won deal; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.won_deals IS 'Number of won deals (purchases).';
COMMENT ON COLUMN salesmgmt.customer_summary.revenue IS 'Sum of the won deals'' amounts, reporting currency at each close date.';
COMMENT ON COLUMN salesmgmt.customer_summary.payments IS 'Money received (payment rows), reporting currency at each payment date.';
COMMENT ON COLUMN salesmgmt.customer_summary.refunds IS 'Money returned (refund rows), reporting currency at each refund date.';
COMMENT ON COLUMN salesmgmt.customer_summary.net_payments IS 'payments - refunds.';
COMMENT ON COLUMN salesmgmt.customer_summary.lifetime_value IS 'revenue - refunds: what the customer has bought, less what was given back.';
COMMENT ON COLUMN salesmgmt.customer_summary.open_deals IS 'Deals still open.';
COMMENT ON COLUMN salesmgmt.customer_summary.open_pipeline IS 'Sum of the open deals'' amounts, reporting currency at today''s rate.';
COMMENT ON COLUMN salesmgmt.customer_summary.last_activity_at IS 'Latest communication record (activity) up to now; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.days_since_last_activity IS 'current_date - date of last_activity_at; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.days_since_last_purchase IS 'current_date - date of last_purchase_at; null if none.';
COMMENT ON COLUMN salesmgmt.customer_summary.recency_score IS 'R: 1 + floor(5 * (rank - 1) / n) ranking last_purchase_at ascending among the n accounts with a purchase (5 = most recent fifth); null without purchase.';
COMMENT ON COLUMN salesmgmt.customer_summary.frequency_score IS 'F: the same quintile formula over won_deals (5 = most purchases); ties share a score.';
COMMENT ON COLUMN salesmgmt.customer_summary.monetary_score IS 'M: the same quintile formula over lifetime_value (5 = most valuable).';
COMMENT ON COLUMN salesmgmt.customer_summary.rfm_cell IS 'The three scores as text, e.g. 545.';
COMMENT ON COLUMN salesmgmt.customer_summary.segment IS 'Segment from R and F: Champions, Loyal customers, Potential loyalists, New customers, Promising, Need attention, About to sleep, At risk, Cannot lose them, Hibernating; Prospect without purchase (grid in docs/bi.md).';
COMMENT ON COLUMN salesmgmt.customer_summary.currency IS 'The reporting currency of the amounts.';

-- ---------------------------------------------------------------------------
-- Customer satisfaction
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.customer_satisfaction WITH (security_invoker = true) AS
WITH per_rep AS (
    SELECT c.rep_id, date_trunc('month', c.responded_at)::date AS month,
           count(*) AS responses,
           count(c.csat) AS csat_responses,
           coalesce(sum(c.csat), 0) AS csat_sum,
           count(*) FILTER (WHERE c.csat >= 4) AS satisfied,
           count(c.nps) AS nps_responses,
           count(*) FILTER (WHERE c.nps >= 9) AS promoters,
           count(*) FILTER (WHERE c.nps BETWEEN 7 AND 8) AS passives,
           count(*) FILTER (WHERE c.nps <= 6) AS detractors
      FROM salesmgmt.csat_response c
     WHERE c.rep_id IS NOT NULL
     GROUP BY 1, 2
),
rolled AS (
    SELECT 'rep'::text AS level, p.rep_id AS unit_id, p.month,
           p.responses, p.csat_responses, p.csat_sum, p.satisfied,
           p.nps_responses, p.promoters, p.passives, p.detractors
      FROM per_rep p
    UNION ALL
    SELECT u.level, u.unit_id, p.month,
           sum(p.responses), sum(p.csat_responses), sum(p.csat_sum), sum(p.satisfied),
           sum(p.nps_responses), sum(p.promoters), sum(p.passives), sum(p.detractors)
      FROM per_rep p
      JOIN salesmgmt.rep_rollup u ON u.member_rep_id = p.rep_id AND u.level = 'team'
     GROUP BY 1, 2, 3
),
units AS (
    SELECT DISTINCT level, unit_id, rep_id, team_id FROM salesmgmt.rep_rollup
),
months AS (
    SELECT generate_series(min(month), greatest(max(month), date_trunc('month', current_date)::date),
                           interval '1 month')::date AS month
      FROM per_rep
)
SELECT u.level, u.rep_id, u.team_id, m.month,
       coalesce(c.responses, 0)::bigint AS responses,
       coalesce(c.csat_responses, 0)::bigint AS csat_responses,
       round(c.csat_sum / nullif(c.csat_responses, 0), 2) AS csat_avg,
       round(c.satisfied / nullif(c.csat_responses, 0), 4) AS csat_satisfied_share,
       coalesce(c.nps_responses, 0)::bigint AS nps_responses,
       coalesce(c.promoters, 0)::bigint AS promoters,
       coalesce(c.passives, 0)::bigint AS passives,
       coalesce(c.detractors, 0)::bigint AS detractors,
       round(100 * (c.promoters - c.detractors) / nullif(c.nps_responses, 0), 2) AS nps
  FROM units u
 CROSS JOIN months m
  LEFT JOIN rolled c ON c.level = u.level AND c.unit_id = u.unit_id AND c.month = m.month;
COMMENT ON VIEW salesmgmt.customer_satisfaction IS 'CSAT average and NPS of the customer responses (salesmgmt.csat_response) per rep, team (with all sub-teams) and month of response; every rep and team has a row for every month from the first response to the current one.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.level IS 'rep: responses about rep_id; team: responses about any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.month IS 'First day of the month of responded_at (session time zone).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.responses IS 'Responses received.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_responses IS 'Responses with a CSAT score (1-5).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_avg IS 'Average CSAT score, 2 decimals; null without CSAT responses.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.csat_satisfied_share IS 'Share of CSAT responses scoring 4 or 5, 4 decimals; null without CSAT responses.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.nps_responses IS 'Responses with an NPS score (0-10).';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.promoters IS 'NPS responses scoring 9 or 10.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.passives IS 'NPS responses scoring 7 or 8.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.detractors IS 'NPS responses scoring 0 to 6.';
COMMENT ON COLUMN salesmgmt.customer_satisfaction.nps IS 'Net promoter score: 100 * (promoters - detractors) / nps_responses, from -100 to 100, 2 decimals; null without NPS responses.';

-- ---------------------------------------------------------------------------
-- Communication records
-- ---------------------------------------------------------------------------

CREATE VIEW salesmgmt.activity_summary WITH (security_invoker = true) AS
WITH per_rep AS (
    SELECT a.rep_id, date_trunc('week', a.occurred_at)::date AS week,
           count(*) FILTER (WHERE a.kind = 'call') AS calls,
           count(*) FILTER (WHERE a.kind = 'email') AS emails,
           count(*) FILTER (WHERE a.kind = 'meeting') AS meetings,
           count(*) FILTER (WHERE a.kind = 'visit') AS visits,
           count(*) FILTER (WHERE a.kind = 'demo') AS demos,
           count(*) FILTER (WHERE a.kind = 'note') AS notes,
           count(*) AS total,
           coalesce(sum(a.duration), interval '0') AS duration
      FROM salesmgmt.activity a
     GROUP BY 1, 2
)
SELECT 'rep'::text AS level, p.rep_id, r.team_id, p.week,
       p.calls, p.emails, p.meetings, p.visits, p.demos, p.notes, p.total,
       round(extract(epoch FROM p.duration) / 3600, 2) AS hours
  FROM per_rep p
  JOIN salesmgmt.rep r ON r.rep_id = p.rep_id
UNION ALL
SELECT u.level, NULL, u.team_id, p.week,
       sum(p.calls)::bigint, sum(p.emails)::bigint, sum(p.meetings)::bigint,
       sum(p.visits)::bigint, sum(p.demos)::bigint, sum(p.notes)::bigint,
       sum(p.total)::bigint,
       round(extract(epoch FROM sum(p.duration)) / 3600, 2)
  FROM per_rep p
  JOIN salesmgmt.rep_rollup u ON u.member_rep_id = p.rep_id AND u.level = 'team'
 GROUP BY u.level, u.team_id, p.week;
COMMENT ON VIEW salesmgmt.activity_summary IS 'Communication records per rep and team (with all sub-teams) and week, by kind; a row for each week with at least one record.';
COMMENT ON COLUMN salesmgmt.activity_summary.level IS 'rep: records of rep_id; team: records of any rep of team_id or of a team below it.';
COMMENT ON COLUMN salesmgmt.activity_summary.rep_id IS 'The rep (level rep); null for team rows.';
COMMENT ON COLUMN salesmgmt.activity_summary.team_id IS 'The rep''s team (level rep) or the team rolled up (level team).';
COMMENT ON COLUMN salesmgmt.activity_summary.week IS 'Monday of the week of occurred_at (ISO week, session time zone).';
COMMENT ON COLUMN salesmgmt.activity_summary.calls IS 'Calls.';
COMMENT ON COLUMN salesmgmt.activity_summary.emails IS 'E-mails.';
COMMENT ON COLUMN salesmgmt.activity_summary.meetings IS 'Meetings.';
COMMENT ON COLUMN salesmgmt.activity_summary.visits IS 'Visits.';
COMMENT ON COLUMN salesmgmt.activity_summary.demos IS 'Demos.';
COMMENT ON COLUMN salesmgmt.activity_summary.notes IS 'Notes.';
COMMENT ON COLUMN salesmgmt.activity_summary.total IS 'All records of the week.';
COMMENT ON COLUMN salesmgmt.activity_summary.hours IS 'Sum of the recorded durations in hours, 2 decimals (records without duration count 0).';

-- The latest record of an account is found through the index on
-- (account_id, occurred_at): one probe per account after one aggregation
-- pass, much cheaper than sorting every record.
CREATE VIEW salesmgmt.account_last_touch WITH (security_invoker = true) AS
WITH counts AS (
    SELECT a.account_id, max(a.occurred_at) AS last_touch_at, count(*) AS total,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '30 days') AS last_30_days,
           count(*) FILTER (WHERE a.occurred_at > now() - interval '90 days') AS last_90_days
      FROM salesmgmt.activity a
     WHERE a.occurred_at <= now()
     GROUP BY a.account_id
)
SELECT acc.account_id, acc.owner_rep_id,
       c.last_touch_at,
       current_date - c.last_touch_at::date AS days_since_last_touch,
       l.kind AS last_touch_kind, l.rep_id AS last_touch_rep_id,
       l.contact_id AS last_touch_contact_id, l.outcome AS last_touch_outcome,
       coalesce(c.last_30_days, 0) AS touches_30_days,
       coalesce(c.last_90_days, 0) AS touches_90_days,
       coalesce(c.total, 0) AS touches_total
  FROM salesmgmt.account acc
  LEFT JOIN counts c ON c.account_id = acc.account_id
  LEFT JOIN LATERAL (
        SELECT a.kind, a.rep_id, a.contact_id, a.outcome
          FROM salesmgmt.activity a
         WHERE a.account_id = c.account_id AND a.occurred_at = c.last_touch_at
         ORDER BY a.activity_id DESC
         LIMIT 1) l ON true;
COMMENT ON VIEW salesmgmt.account_last_touch IS 'Per account: the last communication record up to now (when, what, by whom, with whom, result) and how many records the last 30 and 90 days hold; accounts never touched have nulls and zeros.';
COMMENT ON COLUMN salesmgmt.account_last_touch.account_id IS 'The account.';
COMMENT ON COLUMN salesmgmt.account_last_touch.owner_rep_id IS 'Rep who owns the relationship.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_at IS 'occurred_at of the latest activity not in the future; null if none.';
COMMENT ON COLUMN salesmgmt.account_last_touch.days_since_last_touch IS 'current_date - date of last_touch_at.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_kind IS 'Kind of the latest activity (call, email, meeting, visit, demo, note).';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_rep_id IS 'Rep who made the latest activity.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_contact_id IS 'Contact of the latest activity, if recorded.';
COMMENT ON COLUMN salesmgmt.account_last_touch.last_touch_outcome IS 'Outcome of the latest activity.';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_30_days IS 'Activities in the last 30 days (after now() - 30 days, up to now).';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_90_days IS 'Activities in the last 90 days.';
COMMENT ON COLUMN salesmgmt.account_last_touch.touches_total IS 'All activities up to now.';

-- ---------------------------------------------------------------------------
-- Cohort conversion
-- ---------------------------------------------------------------------------

-- A cohort's share won within N days is known once every deal of the
-- cohort has had N days: from the end of the cohort month plus N days.
-- Until then it is null (the count so far is shown).
CREATE VIEW salesmgmt.cohort_conversion WITH (security_invoker = true) AS
WITH per AS (
    SELECT d.pipeline_id, date_trunc('month', d.created_at)::date AS cohort_month,
           count(*) AS created_deals,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '30 days') AS won_30,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '60 days') AS won_60,
           count(*) FILTER (WHERE s.outcome = 'won' AND c.closed_at <= d.created_at + interval '90 days') AS won_90,
           count(*) FILTER (WHERE s.outcome = 'won') AS won_to_date,
           count(*) FILTER (WHERE s.outcome = 'lost') AS lost_to_date
      FROM salesmgmt.deal d
      JOIN salesmgmt.stage s ON s.stage_id = d.stage_id
     CROSS JOIN LATERAL (SELECT coalesce(d.closed_at, d.stage_entered_at) AS closed_at) c
     GROUP BY 1, 2
),
months AS (
    SELECT generate_series(min(cohort_month), greatest(max(cohort_month), date_trunc('month', current_date)::date),
                           interval '1 month')::date AS cohort_month
      FROM per
),
totals AS (
    SELECT m.cohort_month, p.pipeline_id,
           coalesce(sum(c.created_deals), 0)::bigint AS created_deals,
           coalesce(sum(c.won_30), 0)::bigint AS won_30,
           coalesce(sum(c.won_60), 0)::bigint AS won_60,
           coalesce(sum(c.won_90), 0)::bigint AS won_90,
           coalesce(sum(c.won_to_date), 0)::bigint AS won_to_date,
           coalesce(sum(c.lost_to_date), 0)::bigint AS lost_to_date
      FROM months m
     CROSS JOIN salesmgmt.pipeline p
      LEFT JOIN per c ON c.cohort_month = m.cohort_month AND c.pipeline_id = p.pipeline_id
     GROUP BY GROUPING SETS ((m.cohort_month, p.pipeline_id), (m.cohort_month))
)
SELECT cohort_month, pipeline_id, created_deals,
       won_30 AS won_within_30_days, won_60 AS won_within_60_days, won_90 AS won_within_90_days,
       won_to_date, lost_to_date,
       created_deals - won_to_date - lost_to_date AS open_deals,
       CASE WHEN (cohort_month + interval '1 month' + interval '30 days')::timestamptz <= now()
            THEN round(won_30::numeric / nullif(created_deals, 0), 4) END AS share_won_30_days,
       CASE WHEN (cohort_month + interval '1 month' + interval '60 days')::timestamptz <= now()
            THEN round(won_60::numeric / nullif(created_deals, 0), 4) END AS share_won_60_days,
       CASE WHEN (cohort_month + interval '1 month' + interval '90 days')::timestamptz <= now()
            THEN round(won_90::numeric / nullif(created_deals, 0), 4) END AS share_won_90_days,
       round(won_to_date::numeric / nullif(created_deals, 0), 4) AS share_won_to_date
  FROM totals;
COMMENT ON VIEW salesmgmt.cohort_conversion IS 'Deals created per month (cohort) and pipeline (pipeline_id null: all pipelines) and the share of them won within 30, 60 and 90 days of creation; a row for every month from the first deal to the current one.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.cohort_month IS 'First day of the month the deals were created in (created_at, session time zone).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.pipeline_id IS 'Pipeline of the deals; null on the row that adds up all pipelines.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.created_deals IS 'Deals created in the month.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_30_days IS 'Of them, won with closed_at at most 30 days after created_at (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_60_days IS 'Of them, won at most 60 days after creation (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_within_90_days IS 'Of them, won at most 90 days after creation (so far).';
COMMENT ON COLUMN salesmgmt.cohort_conversion.won_to_date IS 'Of them, won by now.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.lost_to_date IS 'Of them, lost by now.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.open_deals IS 'Of them, still open.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_30_days IS 'won_within_30_days / created_deals, 4 decimals; null until 30 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_60_days IS 'won_within_60_days / created_deals; null until 60 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_90_days IS 'won_within_90_days / created_deals; null until 90 days after the end of the cohort month, and for an empty cohort.';
COMMENT ON COLUMN salesmgmt.cohort_conversion.share_won_to_date IS 'won_to_date / created_deals, 4 decimals; null for an empty cohort.';

-- ---------------------------------------------------------------------------
-- The feedback loop
-- ---------------------------------------------------------------------------

CREATE TABLE salesmgmt.feedback (
    feedback_id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source          text NOT NULL
                    CONSTRAINT feedback_source_valid CHECK (source IN ('customer', 'rep', 'manager')),
    account_id      bigint REFERENCES salesmgmt.account (account_id),
    deal_id         bigint REFERENCES salesmgmt.deal (deal_id),
    rep_id          bigint REFERENCES salesmgmt.rep (rep_id),
    category        text NOT NULL
                    CONSTRAINT feedback_category_not_blank CHECK (btrim(category) <> ''),
    sentiment       text NOT NULL
                    CONSTRAINT feedback_sentiment_valid CHECK (sentiment IN ('positive', 'neutral', 'negative')),
    body            text NOT NULL
                    CONSTRAINT feedback_body_not_blank CHECK (btrim(body) <> ''),
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT feedback_status_valid CHECK (status IN ('open', 'triaged', 'resolved')),
    assignee_rep_id bigint REFERENCES salesmgmt.rep (rep_id),
    resolution      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    triaged_at      timestamptz,
    resolved_at     timestamptz,
    CONSTRAINT feedback_resolved_when_resolved CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    CONSTRAINT feedback_resolution_when_resolved
        CHECK (status <> 'resolved' OR (resolution IS NOT NULL AND btrim(resolution) <> '')),
    CONSTRAINT feedback_triaged_after_created CHECK (triaged_at >= created_at),
    CONSTRAINT feedback_resolved_after_created CHECK (resolved_at >= created_at)
);
CREATE INDEX ON salesmgmt.feedback (status);
CREATE INDEX ON salesmgmt.feedback (created_at);
CREATE INDEX ON salesmgmt.feedback (account_id);
CREATE INDEX ON salesmgmt.feedback (deal_id);
CREATE INDEX ON salesmgmt.feedback (rep_id);
CREATE INDEX ON salesmgmt.feedback (assignee_rep_id);
COMMENT ON TABLE salesmgmt.feedback IS 'Feedback from customers, reps and managers, and its resolution: status moves only forward, open -> triaged -> resolved (triage may be skipped); resolved feedback is final.';
COMMENT ON COLUMN salesmgmt.feedback.feedback_id IS 'Identity of the feedback.';
COMMENT ON COLUMN salesmgmt.feedback.source IS 'Who gave it: customer, rep or manager.';
COMMENT ON COLUMN salesmgmt.feedback.account_id IS 'Account it is about, if any; taken from the deal when only deal_id is given.';
COMMENT ON COLUMN salesmgmt.feedback.deal_id IS 'Deal it is about, if any; must belong to account_id when both are given.';
COMMENT ON COLUMN salesmgmt.feedback.rep_id IS 'Rep it is about (or who gave it), if any.';
COMMENT ON COLUMN salesmgmt.feedback.category IS 'Topic, free text (e.g. pricing, product, service, delivery, process).';
COMMENT ON COLUMN salesmgmt.feedback.sentiment IS 'positive, neutral or negative.';
COMMENT ON COLUMN salesmgmt.feedback.body IS 'What was said.';
COMMENT ON COLUMN salesmgmt.feedback.status IS 'open (new), triaged (assigned, being worked on) or resolved (final).';
COMMENT ON COLUMN salesmgmt.feedback.assignee_rep_id IS 'Rep (or manager) responsible for acting on it.';
COMMENT ON COLUMN salesmgmt.feedback.resolution IS 'What was done about it; required once resolved.';
COMMENT ON COLUMN salesmgmt.feedback.created_at IS 'When it was received; decides its month in feedback_summary.';
COMMENT ON COLUMN salesmgmt.feedback.triaged_at IS 'When it was triaged (set when status becomes triaged); null if triage was skipped.';
COMMENT ON COLUMN salesmgmt.feedback.resolved_at IS 'When it was resolved (set when status becomes resolved); set exactly when resolved.';

-- Keeps the workflow whoever writes the row: the status moves only
-- forward, resolved feedback is final, the step times are stamped, and a
-- deal's feedback is about the deal's account.
CREATE FUNCTION salesmgmt.feedback_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rank_old  integer;
    v_rank_new  integer;
    v_account   bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'resolved'
           AND (NEW.status, NEW.resolution, NEW.resolved_at) IS DISTINCT FROM (OLD.status, OLD.resolution, OLD.resolved_at)
        THEN
            RAISE EXCEPTION 'feedback % is already resolved', OLD.feedback_id
                USING ERRCODE = 'SM051',
                      DETAIL = format('It was resolved at %s; resolved feedback is final.', OLD.resolved_at),
                      HINT = 'Record a new feedback row if the matter came up again.';
        END IF;
        v_rank_old := array_position(ARRAY['open', 'triaged', 'resolved'], OLD.status);
        v_rank_new := array_position(ARRAY['open', 'triaged', 'resolved'], NEW.status);
        IF v_rank_new < v_rank_old THEN
            RAISE EXCEPTION 'feedback % cannot move back from % to %', OLD.feedback_id, OLD.status, NEW.status
                USING ERRCODE = 'SM050',
                      DETAIL = 'Feedback status moves only forward: open, triaged, resolved.',
                      HINT = 'Leave the status as it is, or resolve the feedback with salesmgmt.resolve_feedback.';
        END IF;
    END IF;

    IF NEW.deal_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.deal_id IS DISTINCT FROM OLD.deal_id
                                    OR NEW.account_id IS DISTINCT FROM OLD.account_id) THEN
        SELECT d.account_id INTO v_account FROM salesmgmt.deal d WHERE d.deal_id = NEW.deal_id;
        IF FOUND THEN
            IF NEW.account_id IS NULL THEN
                NEW.account_id := v_account;
            ELSIF NEW.account_id <> v_account THEN
                RAISE EXCEPTION 'deal % belongs to account %, not to account %', NEW.deal_id, v_account, NEW.account_id
                    USING ERRCODE = '23514', CONSTRAINT = 'feedback_deal_of_account',
                          HINT = 'Leave account_id null to take the deal''s account.';
            END IF;
        END IF;
    END IF;

    IF NEW.status = 'triaged' AND (TG_OP = 'INSERT' OR OLD.status = 'open') THEN
        NEW.triaged_at := coalesce(NEW.triaged_at, now());
    END IF;
    IF NEW.status = 'resolved' AND (TG_OP = 'INSERT' OR OLD.status <> 'resolved') THEN
        NEW.resolved_at := coalesce(NEW.resolved_at, now());
    END IF;
    IF NEW.triaged_at > now() OR NEW.resolved_at > now() THEN
        RAISE EXCEPTION 'feedback cannot be triaged or resolved in the future'
            USING ERRCODE = '22023',
                  DETAIL = format('triaged_at %s, resolved_at %s, now %s.', NEW.triaged_at, NEW.resolved_at, now()),
                  HINT = 'Leave triaged_at and resolved_at null to stamp the current time.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER feedback_workflow
    BEFORE INSERT OR UPDATE ON salesmgmt.feedback
    FOR EACH ROW EXECUTE FUNCTION salesmgmt.feedback_check();

CREATE FUNCTION salesmgmt.triage_feedback(p_feedback_id bigint, p_assignee_rep_id bigint)
RETURNS salesmgmt.feedback
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row salesmgmt.feedback;
BEGIN
    IF p_feedback_id IS NULL OR p_assignee_rep_id IS NULL THEN
        RAISE EXCEPTION 'feedback id and assignee must not be null'
            USING ERRCODE = '22004';
    END IF;
    SELECT * INTO v_row FROM salesmgmt.feedback WHERE feedback_id = p_feedback_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feedback % does not exist', p_feedback_id
            USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM salesmgmt.rep WHERE rep_id = p_assignee_rep_id) THEN
        RAISE EXCEPTION 'rep % does not exist', p_assignee_rep_id
            USING ERRCODE = '42704',
                  HINT = 'Assign the feedback to an existing rep (salesmgmt.rep).';
    END IF;
    -- a triaged row may be reassigned; a resolved one is refused by the trigger
    UPDATE salesmgmt.feedback
       SET status = 'triaged', assignee_rep_id = p_assignee_rep_id
     WHERE feedback_id = p_feedback_id
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION salesmgmt.triage_feedback(bigint, bigint) IS 'Moves open feedback to triaged and assigns it (or reassigns triaged feedback); raises SM051 for resolved feedback, 42704 for an unknown feedback or rep.';

CREATE FUNCTION salesmgmt.resolve_feedback(p_feedback_id bigint, p_resolution text)
RETURNS salesmgmt.feedback
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row salesmgmt.feedback;
BEGIN
    IF p_feedback_id IS NULL THEN
        RAISE EXCEPTION 'feedback id must not be null'
            USING ERRCODE = '22004';
    END IF;
    IF p_resolution IS NULL OR btrim(p_resolution) = '' THEN
        RAISE EXCEPTION 'a resolution is required to resolve feedback %', p_feedback_id
            USING ERRCODE = '22023',
                  HINT = 'Say what was done about the feedback.';
    END IF;
    -- the row lock makes a concurrent second resolver wait, then see the
    -- first one's resolution and get SM051
    SELECT * INTO v_row FROM salesmgmt.feedback WHERE feedback_id = p_feedback_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feedback % does not exist', p_feedback_id
            USING ERRCODE = '42704';
    END IF;
    IF v_row.status = 'resolved' THEN
        RAISE EXCEPTION 'feedback % is already resolved', p_feedback_id
            USING ERRCODE = 'SM051',
                  DETAIL = format('It was resolved at %s with: %s', v_row.resolved_at, v_row.resolution),
                  HINT = 'Resolved feedback is final; record a new feedback row if the matter came up again.';
    END IF;
    UPDATE salesmgmt.feedback
       SET status = 'resolved', resolution = p_resolution, resolved_at = now()
     WHERE feedback_id = p_feedback_id
    RETURNING * INTO v_row;
    RETURN v_row;
END
$$;
COMMENT ON FUNCTION salesmgmt.resolve_feedback(bigint, text) IS 'Resolves open or triaged feedback with a resolution text and returns the row; raises SM051 if already resolved, 22023 for a blank resolution, 42704 for an unknown id.';

SELECT salesmgmt._register_config_table('salesmgmt.feedback');

CREATE VIEW salesmgmt.feedback_summary WITH (security_invoker = true) AS
WITH months AS (
    SELECT generate_series(date_trunc('month', min(created_at))::date,
                           greatest(date_trunc('month', max(created_at)), date_trunc('month', current_date))::date,
                           interval '1 month')::date AS month
      FROM salesmgmt.feedback
),
categories AS (
    SELECT DISTINCT category FROM salesmgmt.feedback
),
fb AS (
    SELECT f.*, date_trunc('month', f.created_at)::date AS month FROM salesmgmt.feedback f
)
SELECT m.month, c.category,
       count(f.feedback_id) AS received,
       count(*) FILTER (WHERE f.status = 'open') AS open_count,
       count(*) FILTER (WHERE f.status = 'triaged') AS triaged_count,
       count(*) FILTER (WHERE f.status = 'resolved') AS resolved_count,
       count(*) FILTER (WHERE f.sentiment = 'negative') AS negative_count,
       round(count(*) FILTER (WHERE f.sentiment = 'negative')::numeric / nullif(count(f.feedback_id), 0), 4)
           AS negative_share,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at)
           FILTER (WHERE f.status = 'resolved') AS median_time_to_resolve,
       round((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY f.resolved_at - f.created_at)
                                 FILTER (WHERE f.status = 'resolved')) / 86400)::numeric, 2)
           AS median_days_to_resolve
  FROM months m
 CROSS JOIN categories c
  LEFT JOIN fb f ON f.category = c.category AND f.month = m.month
 GROUP BY GROUPING SETS ((m.month, c.category), (m.month));
COMMENT ON VIEW salesmgmt.feedback_summary IS 'Feedback received per month and category (category null: all categories): how much is still open, how negative it is, and the median time to resolve; a row for every month from the first feedback to the current one.';
COMMENT ON COLUMN salesmgmt.feedback_summary.month IS 'First day of the month the feedback was received in (created_at, session time zone).';
COMMENT ON COLUMN salesmgmt.feedback_summary.category IS 'Category; null on the row that adds up all categories.';
COMMENT ON COLUMN salesmgmt.feedback_summary.received IS 'Feedback received in the month.';
COMMENT ON COLUMN salesmgmt.feedback_summary.open_count IS 'Of it, still open (not yet triaged).';
COMMENT ON COLUMN salesmgmt.feedback_summary.triaged_count IS 'Of it, triaged and not yet resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.resolved_count IS 'Of it, resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.negative_count IS 'Of it, with negative sentiment.';
COMMENT ON COLUMN salesmgmt.feedback_summary.negative_share IS 'negative_count / received, 4 decimals; null when nothing was received.';
COMMENT ON COLUMN salesmgmt.feedback_summary.median_time_to_resolve IS 'Median of resolved_at - created_at over the resolved feedback (interpolated between the two middle values); null when none is resolved.';
COMMENT ON COLUMN salesmgmt.feedback_summary.median_days_to_resolve IS 'median_time_to_resolve in days, 2 decimals.';

-- ===== src/security.sql =====
-- security.sql: who may see and change what.  Comes last in the install
-- script, so it can cover every table, view and function the other concerns
-- created before it.  See docs/security.md.
--
-- The model:
--   * three NOLOGIN group roles: salesmgmt_admin (everything),
--     salesmgmt_manager (their own rows and those of every rep in the team
--     trees they manage), salesmgmt_rep (their own rows);
--   * a login role is a rep when salesmgmt.rep.db_role names it and it is a
--     member of salesmgmt_rep or salesmgmt_manager;
--   * row-level security on every table holding per-rep data; a policy for
--     salesmgmt_admin that is simply "true" (admins pay nothing), and one for
--     reps and managers that tests membership in sets computed once per
--     statement by SECURITY DEFINER helpers (hashed sub-plans, not per-row
--     function calls);
--   * configuration (pipelines, stages, currencies, the team tree and the
--     rep directory) readable by all three roles, writable by admins only;
--   * nothing granted to PUBLIC.

-- ---------------------------------------------------------------------------
-- Roles (cluster-wide: another database may have created them already)
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$$;

-- A rep row mapped to a group role would hand its view to every member of
-- the group (they can all SET ROLE to it), and to a predefined role to
-- half the cluster.
ALTER TABLE salesmgmt.rep ADD CONSTRAINT rep_db_role_not_group
    CHECK (db_role NOT IN ('salesmgmt_admin', 'salesmgmt_manager', 'salesmgmt_rep', 'public')
           AND db_role !~ '^pg_');

-- ---------------------------------------------------------------------------
-- Visibility helpers
--
-- Each takes the role to answer for, defaulting to current_user: a default
-- is evaluated in the caller's context, so inside a policy it is the role
-- running the query, not the owner these functions run as.  A session may
-- only ask about roles it can act as (SET ROLE to), so nobody learns
-- another rep's scope.
-- ---------------------------------------------------------------------------

-- The rep a role is mapped to (active reps only), or null.
CREATE FUNCTION salesmgmt.current_rep_id(p_role name DEFAULT current_user)
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint;
BEGIN
    IF p_role IS NULL THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = p_role) THEN
        RETURN NULL;
    END IF;
    IF NOT pg_catalog.pg_has_role(session_user, p_role, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" may not ask which rep role "%" is', session_user, p_role
            USING ERRCODE = '42501',
                  HINT = 'Call the function without an argument to ask about the current role.';
    END IF;
    SELECT r.rep_id INTO v_rep FROM salesmgmt.rep r WHERE r.db_role = p_role AND r.active;
    RETURN v_rep;
END
$$;
COMMENT ON FUNCTION salesmgmt.current_rep_id(name) IS 'The active rep mapped to the role (default: the current role) through rep.db_role, or null; a session may only ask about roles it can SET ROLE to.';

-- Teams a rep manages and every team below them.  Internal: called by
-- the helpers below (as their owner), not granted to anyone.
CREATE FUNCTION salesmgmt._managed_team_ids(p_rep_id bigint)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- PL/pgSQL rather than SQL: the plan is kept across calls, and the
    -- policies call this once per statement
    RETURN QUERY
    WITH RECURSIVE tree(team_id) AS (
        SELECT t.team_id FROM salesmgmt.team t WHERE t.manager_rep_id = p_rep_id
        UNION
        SELECT t.team_id FROM salesmgmt.team t JOIN tree ON t.parent_team_id = tree.team_id
    )
    SELECT tree.team_id FROM tree;
END
$$;
COMMENT ON FUNCTION salesmgmt._managed_team_ids(bigint) IS 'Internal: the teams a rep manages and every team below them (UNION stops at a cycle).';

-- Reps whose rows the role sees: its own rep, and for members of
-- salesmgmt_manager every rep of every team below a team it manages.
CREATE FUNCTION salesmgmt.visible_rep_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint := salesmgmt.current_rep_id(p_role);
BEGIN
    IF v_rep IS NULL THEN
        RETURN;
    END IF;
    RETURN NEXT v_rep;
    IF pg_catalog.pg_has_role(p_role, 'salesmgmt_manager', 'USAGE') THEN
        -- a join, not team_id = ANY (array): a VP's thousand teams would
        -- be searched linearly for every rep
        RETURN QUERY
        SELECT r.rep_id
          FROM salesmgmt.rep r JOIN salesmgmt._managed_team_ids(v_rep) AS t(team_id) ON t.team_id = r.team_id
         WHERE r.rep_id <> v_rep;
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.visible_rep_ids(name) IS 'Reps whose rows the role (default: the current role) sees: its own, and for managers every rep of the team trees they manage. Empty for an unmapped or inactive role.';

-- Teams whose team-level rows (quotas) the role sees: the rep's own team,
-- and for managers every team of the trees they manage.
CREATE FUNCTION salesmgmt.visible_team_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rep bigint := salesmgmt.current_rep_id(p_role);
BEGIN
    IF v_rep IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT r.team_id FROM salesmgmt.rep r WHERE r.rep_id = v_rep AND r.team_id IS NOT NULL;
    IF pg_catalog.pg_has_role(p_role, 'salesmgmt_manager', 'USAGE') THEN
        RETURN QUERY SELECT salesmgmt._managed_team_ids(v_rep);
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.visible_team_ids(name) IS 'Teams whose team-level rows (quotas) the role sees: the rep''s own team and, for managers, every team of the trees they manage (a team may appear twice).';

-- Deals a visible rep holds a credit share of.  A definer function rather
-- than a sub-select in the deal policy: deal_split's own policy refers to
-- deal, and policies may not refer to each other in a circle.
CREATE FUNCTION salesmgmt.split_deal_ids(p_role name DEFAULT current_user)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ROWS 20
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reps bigint[] := ARRAY(SELECT salesmgmt.visible_rep_ids(p_role));
BEGIN
    -- a rep's few ids: index probes; a manager's many: one hashed scan
    IF pg_catalog.cardinality(v_reps) <= 1 THEN
        RETURN QUERY SELECT s.deal_id FROM salesmgmt.deal_split s WHERE s.rep_id = v_reps[1];
    ELSE
        RETURN QUERY SELECT DISTINCT s.deal_id FROM salesmgmt.deal_split s
                      WHERE s.rep_id IN (SELECT pg_catalog.unnest(v_reps));
    END IF;
END
$$;
COMMENT ON FUNCTION salesmgmt.split_deal_ids(name) IS 'Deals in which a rep visible to the role (default: the current role) holds a credit share.';

-- Whether the role may see (and put deals, contacts, activities on) an
-- account: owned by a visible rep, or the account of a deal it sees.  One
-- account at a time, for the checks of new rows: the whole set of a
-- manager's accounts would cost a scan of their deals per statement.
CREATE FUNCTION salesmgmt.account_in_scope(p_account_id bigint, p_role name DEFAULT current_user)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reps bigint[];
BEGIN
    IF p_account_id IS NULL THEN
        RETURN false;
    END IF;
    v_reps := ARRAY(SELECT salesmgmt.visible_rep_ids(p_role));
    RETURN EXISTS (SELECT 1 FROM salesmgmt.account a
                    WHERE a.account_id = p_account_id AND a.owner_rep_id = ANY (v_reps))
        OR EXISTS (SELECT 1 FROM salesmgmt.deal d
                    WHERE d.account_id = p_account_id AND d.owner_rep_id = ANY (v_reps))
        OR EXISTS (SELECT 1 FROM salesmgmt.deal d JOIN salesmgmt.deal_split s ON s.deal_id = d.deal_id
                    WHERE d.account_id = p_account_id AND s.rep_id = ANY (v_reps));
END
$$;
COMMENT ON FUNCTION salesmgmt.account_in_scope(bigint, name) IS 'True when the role (default: the current role) sees the account: owned by a visible rep, or the account of a deal it sees.';

-- A deal moved to another account must stay within the writer's accounts;
-- checked only when account_id changes, so ordinary updates pay nothing.
CREATE FUNCTION salesmgmt._deal_account_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE')
       AND NOT salesmgmt.account_in_scope(NEW.account_id)
    THEN
        RAISE EXCEPTION 'deal % cannot be moved to account %: the account is not one you can see',
            NEW.deal_id, NEW.account_id
            USING ERRCODE = '42501',
                  HINT = 'Move deals only to accounts owned by you (or your team), or ask an admin.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION salesmgmt._deal_account_check() IS 'Internal trigger: a rep or manager may move a deal only to an account they can see.';
CREATE TRIGGER deal_account_in_scope
    BEFORE UPDATE OF account_id ON salesmgmt.deal
    FOR EACH ROW WHEN (OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION salesmgmt._deal_account_check();

CREATE FUNCTION salesmgmt.is_visible_rep(p_rep_id bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN p_rep_id IS NULL THEN NULL
        WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN true
        ELSE p_rep_id IN (SELECT salesmgmt.visible_rep_ids())
    END;
$$;
COMMENT ON FUNCTION salesmgmt.is_visible_rep(bigint) IS 'True when the current role sees the rows of the rep: admins see every rep, managers their team trees, reps themselves.';

-- What the current role is to salesmgmt: for checking a login's mapping.
CREATE FUNCTION salesmgmt.current_access(
    OUT role_name name, OUT rep_id bigint, OUT rep_name text, OUT access text,
    OUT visible_reps bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT current_user,
           salesmgmt.current_rep_id(),
           (SELECT r.name FROM salesmgmt.rep r WHERE r.rep_id = salesmgmt.current_rep_id()),
           CASE WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_admin', 'USAGE') THEN 'admin'
                WHEN salesmgmt.current_rep_id() IS NULL THEN 'none'
                WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_manager', 'USAGE') THEN 'manager'
                WHEN pg_catalog.pg_has_role(current_user, 'salesmgmt_rep', 'USAGE') THEN 'rep'
                ELSE 'none' END,
           (SELECT count(*) FROM salesmgmt.visible_rep_ids());
$$;
COMMENT ON FUNCTION salesmgmt.current_access() IS 'The current role, the rep it is mapped to, and its access (admin, manager, rep or none) with the number of reps whose rows it sees.';

-- ---------------------------------------------------------------------------
-- Integrity triggers must see every row, whatever the writer may see: a
-- check that the credit shares of a deal sum to 1 is no check if it only
-- counts the shares the writer can read.  Trigger functions cannot be
-- called directly, so running them as the owner lends nobody anything.
-- ---------------------------------------------------------------------------

ALTER FUNCTION salesmgmt.deal_split_check_total() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.team_check_manager() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.rep_check_not_manager() SECURITY DEFINER;
ALTER FUNCTION salesmgmt.team_check_cycle() SECURITY DEFINER;

-- ---------------------------------------------------------------------------
-- Privileges.  Start from nothing: no function of the extension is
-- executable by PUBLIC (CREATE FUNCTION grants that by default).
-- ---------------------------------------------------------------------------

REVOKE ALL ON SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA salesmgmt FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA salesmgmt FROM PUBLIC;
GRANT USAGE ON SCHEMA salesmgmt TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- Admins: every table; sequences for inserts.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA salesmgmt TO salesmgmt_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA salesmgmt TO salesmgmt_admin;

-- Configuration and directory: read by everyone, written by admins.
GRANT SELECT ON salesmgmt.currency, salesmgmt.currency_rate, salesmgmt.team, salesmgmt.rep,
                salesmgmt.pipeline, salesmgmt.stage, salesmgmt.stage_transition
    TO salesmgmt_manager, salesmgmt_rep;

-- Per-rep data: what reps and managers may do at all; RLS narrows the rows.
GRANT SELECT, INSERT, UPDATE ON salesmgmt.account, salesmgmt.contact, salesmgmt.deal
    TO salesmgmt_manager, salesmgmt_rep;
GRANT SELECT, INSERT, UPDATE, DELETE ON salesmgmt.deal_split, salesmgmt.activity, salesmgmt.sales_task
    TO salesmgmt_manager, salesmgmt_rep;
GRANT SELECT ON salesmgmt.payment, salesmgmt.quota TO salesmgmt_manager, salesmgmt_rep;
-- history: read only; the pipeline trigger appends it as the table's owner
GRANT SELECT ON salesmgmt.deal_stage_history TO salesmgmt_manager, salesmgmt_rep;
GRANT USAGE ON SEQUENCE
    salesmgmt.account_account_id_seq, salesmgmt.contact_contact_id_seq,
    salesmgmt.deal_deal_id_seq, salesmgmt.activity_activity_id_seq,
    salesmgmt.sales_task_task_id_seq
    TO salesmgmt_manager, salesmgmt_rep;

-- Pipeline: reps and managers move the deals row-level security lets them
-- change (the boards and other views are granted with every view below).
GRANT EXECUTE ON FUNCTION
    salesmgmt.move_deal(bigint, text, text), salesmgmt.allowed_next_stages(bigint),
    salesmgmt._allowed_next_stage_ids(bigint)
    TO salesmgmt_manager, salesmgmt_rep;

-- Functions for everyone: the visibility helpers (policies call them as
-- the querying role) and the read-only utilities.
GRANT EXECUTE ON FUNCTION
    salesmgmt.current_rep_id(name), salesmgmt.visible_rep_ids(name),
    salesmgmt.visible_team_ids(name), salesmgmt.split_deal_ids(name),
    salesmgmt.account_in_scope(bigint, name), salesmgmt.is_visible_rep(bigint),
    salesmgmt.current_access(), salesmgmt.convert_amount(numeric, char, char, date)
    TO salesmgmt_admin, salesmgmt_manager, salesmgmt_rep;

-- ---------------------------------------------------------------------------
-- Row-level security.  Admins get one permissive "true" policy per table;
-- reps and managers the policies below.  A role that is both gets the
-- union, which the planner folds to "true".
--
-- Sets are used through IN (SELECT f()): an uncorrelated sub-select that
-- the executor hashes once per statement, so a row costs one hash probe,
-- however many reps a manager sees.  (= ANY (f_array()) would be a linear
-- search per row.)
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['account', 'contact', 'deal', 'deal_split', 'payment', 'activity',
                             'quota', 'sales_task', 'deal_stage_history']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE salesmgmt.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON salesmgmt.%I TO salesmgmt_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format(
            'COMMENT ON POLICY admin_all ON salesmgmt.%I IS %L', t,
            'Admins see and change every row.');
    END LOOP;
END
$$;

-- account: owned by a visible rep, or the account of a visible deal;
-- reps and managers create and change accounts of visible owners only.
CREATE POLICY account_read ON salesmgmt.account FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.account_id = account.account_id));
CREATE POLICY account_insert ON salesmgmt.account FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()));
CREATE POLICY account_update ON salesmgmt.account FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()))
    WITH CHECK (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()));

-- contact: people of the accounts the role sees.
CREATE POLICY contact_read ON salesmgmt.contact FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (EXISTS (SELECT 1 FROM salesmgmt.account a WHERE a.account_id = contact.account_id));
CREATE POLICY contact_insert ON salesmgmt.contact FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (salesmgmt.account_in_scope(account_id));
CREATE POLICY contact_update ON salesmgmt.contact FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (EXISTS (SELECT 1 FROM salesmgmt.account a WHERE a.account_id = contact.account_id))
    WITH CHECK (salesmgmt.account_in_scope(account_id));

-- deal: owned by a visible rep, or shared with one by a credit split.
-- Only the owner's side changes a deal (a split partner reads it); a new
-- deal is opened on an account the role sees (and the trigger
-- deal_account_in_scope keeps it so when its account changes).
CREATE POLICY deal_read ON salesmgmt.deal FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR deal_id IN (SELECT salesmgmt.split_deal_ids()));
CREATE POLICY deal_insert ON salesmgmt.deal FOR INSERT TO salesmgmt_manager, salesmgmt_rep
    WITH CHECK (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())
                AND salesmgmt.account_in_scope(account_id));
CREATE POLICY deal_update ON salesmgmt.deal FOR UPDATE TO salesmgmt_manager, salesmgmt_rep
    USING (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()))
    WITH CHECK (owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()));

-- deal_split: a rep reads its own shares and the splits of deals it sees;
-- only the owner's side (the owner, their managers) changes the splits.
CREATE POLICY deal_split_read ON salesmgmt.deal_split FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.deal_id = deal_split.deal_id));
CREATE POLICY deal_split_write ON salesmgmt.deal_split FOR ALL TO salesmgmt_manager, salesmgmt_rep
    USING (EXISTS (SELECT 1 FROM salesmgmt.deal d
                    WHERE d.deal_id = deal_split.deal_id
                      AND d.owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())))
    WITH CHECK (EXISTS (SELECT 1 FROM salesmgmt.deal d
                         WHERE d.deal_id = deal_split.deal_id
                           AND d.owner_rep_id IN (SELECT salesmgmt.visible_rep_ids())));

-- payment: money of the deals the role sees (written by admins).
CREATE POLICY payment_read ON salesmgmt.payment FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.deal_id = payment.deal_id));

-- deal_stage_history: the history of the deals the role sees (appended
-- by the pipeline trigger as the table's owner; nobody else writes it).
CREATE POLICY deal_stage_history_read ON salesmgmt.deal_stage_history FOR SELECT
    TO salesmgmt_manager, salesmgmt_rep
    USING (EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.deal_id = deal_stage_history.deal_id));

-- activity: done by a visible rep, about a deal the role sees, or (not
-- about a deal) with an account a visible rep owns; a rep records only
-- activities of visible reps with accounts it sees.
CREATE POLICY activity_read ON salesmgmt.activity FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR (deal_id IS NOT NULL
               AND EXISTS (SELECT 1 FROM salesmgmt.deal d WHERE d.deal_id = activity.deal_id))
           OR (deal_id IS NULL
               AND EXISTS (SELECT 1 FROM salesmgmt.account a
                            WHERE a.account_id = activity.account_id
                              AND a.owner_rep_id IN (SELECT salesmgmt.visible_rep_ids()))));
CREATE POLICY activity_write ON salesmgmt.activity FOR ALL TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids()))
    WITH CHECK (rep_id IN (SELECT salesmgmt.visible_rep_ids())
                AND salesmgmt.account_in_scope(account_id));

-- quota: targets of visible reps and teams (set by admins).
CREATE POLICY quota_read ON salesmgmt.quota FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR team_id IN (SELECT salesmgmt.visible_team_ids()));

-- sales_task: assigned to or by a visible rep; a manager assigns tasks to
-- the team, a rep plans its own.
CREATE POLICY sales_task_read ON salesmgmt.sales_task FOR SELECT TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids())
           OR assigned_by IN (SELECT salesmgmt.visible_rep_ids()));
CREATE POLICY sales_task_write ON salesmgmt.sales_task FOR ALL TO salesmgmt_manager, salesmgmt_rep
    USING (rep_id IN (SELECT salesmgmt.visible_rep_ids()))
    WITH CHECK (rep_id IN (SELECT salesmgmt.visible_rep_ids())
                AND (assigned_by IS NULL OR assigned_by IN (SELECT salesmgmt.visible_rep_ids())));

COMMENT ON POLICY account_read ON salesmgmt.account IS 'Reps and managers see accounts owned by a visible rep and the accounts of deals they see.';
COMMENT ON POLICY account_insert ON salesmgmt.account IS 'Reps and managers create accounts owned by a visible rep.';
COMMENT ON POLICY account_update ON salesmgmt.account IS 'Reps and managers change accounts owned by a visible rep, and cannot hand them outside their scope.';
COMMENT ON POLICY contact_read ON salesmgmt.contact IS 'Reps and managers see the contacts of accounts they see.';
COMMENT ON POLICY contact_insert ON salesmgmt.contact IS 'Reps and managers add contacts to accounts they see.';
COMMENT ON POLICY contact_update ON salesmgmt.contact IS 'Reps and managers change contacts of accounts they see, and keep them there.';
COMMENT ON POLICY deal_read ON salesmgmt.deal IS 'Reps and managers see deals owned by a visible rep or shared with one by a credit split.';
COMMENT ON POLICY deal_insert ON salesmgmt.deal IS 'Reps and managers create deals owned by a visible rep on an account they see.';
COMMENT ON POLICY deal_update ON salesmgmt.deal IS 'Reps and managers change deals owned by a visible rep, and cannot hand them outside their scope (the account is checked by the trigger deal_account_in_scope).';
COMMENT ON POLICY deal_split_read ON salesmgmt.deal_split IS 'Reps and managers see their own credit shares and the splits of deals they see.';
COMMENT ON POLICY deal_split_write ON salesmgmt.deal_split IS 'Only the owner''s side of a deal (the owner, their managers) changes its splits.';
COMMENT ON POLICY payment_read ON salesmgmt.payment IS 'Reps and managers see payments of deals they see; admins record them.';
COMMENT ON POLICY deal_stage_history_read ON salesmgmt.deal_stage_history IS 'Reps and managers see the history of deals they see.';
COMMENT ON POLICY activity_read ON salesmgmt.activity IS 'Reps and managers see activities of visible reps, about deals they see, and (not about a deal) with accounts a visible rep owns.';
COMMENT ON POLICY activity_write ON salesmgmt.activity IS 'Reps and managers record and change activities of visible reps with accounts they see.';
COMMENT ON POLICY quota_read ON salesmgmt.quota IS 'Reps and managers see the quotas of visible reps and teams; admins set them.';
COMMENT ON POLICY sales_task_read ON salesmgmt.sales_task IS 'Reps and managers see tasks assigned to or by a visible rep.';
COMMENT ON POLICY sales_task_write ON salesmgmt.sales_task IS 'Managers assign tasks within their team trees; reps plan their own.';

-- ---------------------------------------------------------------------------
-- The tables of the other concerns (forecast, commission, kpi, analytics).
-- Each rule applies when its table (and column) exists, so the install
-- script is the same whatever subset of concerns is built; a table without
-- a rule falls to the default deny below (admins only).
--   config  readable by everyone, written by admins
--   rep     the rows of visible reps (the columns are ORed); read only
--   child   rows of a parent row the role sees (first column refers to
--           the parent's key of the same name)
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    r record;
    v_cols text[];
    v_qual text;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('commission_plan', 'config', NULL::text[], NULL::text),
            ('commission_tier', 'config', NULL, NULL),
            ('commission_spiff', 'config', NULL, NULL),
            ('commission_period', 'config', NULL, NULL),
            ('training_course', 'config', NULL, NULL),
            ('kpi', 'config', NULL, NULL),
            ('kpi_scheme', 'config', NULL, NULL),
            ('kpi_scheme_item', 'config', NULL, NULL),
            ('commission_line', 'rep', ARRAY['rep_id'], NULL),
            ('commission_assignment', 'rep', ARRAY['rep_id'], NULL),
            ('commission_draw', 'rep', ARRAY['rep_id'], NULL),
            ('scorecard', 'rep', ARRAY['rep_id'], NULL),
            ('training_enrollment', 'rep', ARRAY['rep_id'], NULL),
            ('recognition', 'rep', ARRAY['rep_id'], NULL),
            ('csat_response', 'rep', ARRAY['rep_id'], NULL),
            ('review', 'rep', ARRAY['rep_id', 'reviewer_rep_id'], NULL),
            ('feedback', 'rep', ARRAY['rep_id', 'assignee_rep_id'], NULL),
            ('forecast_adjustment', 'rep', ARRAY['rep_id'], NULL),
            ('scorecard_item', 'child', ARRAY['scorecard_id'], 'scorecard')
        ) AS rule(tbl, kind, cols, parent)
    LOOP
        CONTINUE WHEN pg_catalog.to_regclass('salesmgmt.' || r.tbl) IS NULL;
        -- the rule's columns that the table has
        SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO v_cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = pg_catalog.to_regclass('salesmgmt.' || r.tbl)
           AND a.attname = ANY (r.cols) AND NOT a.attisdropped;
        CONTINUE WHEN r.kind <> 'config' AND v_cols IS NULL;
        CONTINUE WHEN r.kind = 'child' AND pg_catalog.to_regclass('salesmgmt.' || r.parent) IS NULL;

        EXECUTE pg_catalog.format('ALTER TABLE salesmgmt.%I ENABLE ROW LEVEL SECURITY', r.tbl);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON salesmgmt.%I TO salesmgmt_admin USING (true) WITH CHECK (true)', r.tbl);
        EXECUTE pg_catalog.format('COMMENT ON POLICY admin_all ON salesmgmt.%I IS %L', r.tbl,
                                  'Admins see and change every row.');
        v_qual := CASE r.kind
            WHEN 'config' THEN 'true'
            WHEN 'rep' THEN (SELECT pg_catalog.string_agg(
                                 pg_catalog.format('%I IN (SELECT salesmgmt.visible_rep_ids())', c), ' OR ')
                               FROM pg_catalog.unnest(v_cols) AS c)
            WHEN 'child' THEN pg_catalog.format(
                'EXISTS (SELECT 1 FROM salesmgmt.%I p WHERE p.%I = %I.%I)', r.parent, v_cols[1], r.tbl, v_cols[1])
        END;
        EXECUTE pg_catalog.format(
            'CREATE POLICY %I ON salesmgmt.%I FOR SELECT TO salesmgmt_manager, salesmgmt_rep USING (%s)',
            r.tbl || '_read', r.tbl, v_qual);
        EXECUTE pg_catalog.format('COMMENT ON POLICY %I ON salesmgmt.%I IS %L', r.tbl || '_read', r.tbl,
            CASE r.kind
                WHEN 'config' THEN 'Configuration: reps and managers read every row; admins write.'
                WHEN 'rep' THEN 'Reps and managers read the rows of visible reps (' || pg_catalog.array_to_string(v_cols, ', ') || '); admins write.'
                ELSE 'Reps and managers read the rows of ' || r.parent || ' rows they see; admins write.'
            END);
        EXECUTE pg_catalog.format('GRANT SELECT ON salesmgmt.%I TO salesmgmt_manager, salesmgmt_rep', r.tbl);
    END LOOP;
END
$$;

-- Functions of the other concerns that reps and managers may call: they
-- run with the caller's rights, so they compute over the rows the caller
-- sees.  (run_commissions, compute_scorecards, snapshot_forecast and the
-- webhook functions stay with admins.)
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'salesmgmt.forecast(date,date,text,timestamptz,character)',
        'salesmgmt.forecast_range(date,date,bigint,integer,bigint)',
        'salesmgmt.win_rates(bigint,date,timestamptz)',
        'salesmgmt.commission_line_explanation(salesmgmt.commission_line)',
        'salesmgmt._commission_pct(numeric)',
        'salesmgmt._commission_money(numeric)',
        'salesmgmt.kpi_score(numeric,numeric,text,text,numeric,numeric)',
        'salesmgmt.kpi_metrics()',
        'salesmgmt.reporting_currency()']
    LOOP
        BEGIN
            -- to_regprocedure still raises for an argument type that does
            -- not exist (the concern that defines it is not built)
            IF pg_catalog.to_regprocedure(f) IS NOT NULL THEN
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO salesmgmt_manager, salesmgmt_rep',
                                          pg_catalog.to_regprocedure(f));
            END IF;
        EXCEPTION WHEN undefined_object THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Default deny for anything not decided above: a table of the extension
-- without row-level security gets it with the admin policy only (and no
-- grant to reps or managers), except the configuration tables readable by
-- all; every function is executable by admins, none by PUBLIC.  A concern
-- that adds a table or function is thus safe before this file learns what
-- reps and managers may do with it.
-- ---------------------------------------------------------------------------

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace
           AND c.relkind IN ('r', 'p')
           AND NOT c.relrowsecurity
           AND c.relname NOT IN ('currency', 'currency_rate', 'team', 'rep', 'pipeline', 'stage',
                                 'stage_transition')
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format(
            'CREATE POLICY admin_all ON %s TO salesmgmt_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('COMMENT ON POLICY admin_all ON %s IS %L', t,
                                  'Admins see and change every row.');
    END LOOP;
END
$$;

-- A view reads its tables with its owner's rights unless it is
-- security_invoker; owned by the superuser that installed the extension, it
-- would show every row to anyone allowed to read it.
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN
        SELECT c.oid::regclass
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'v'
           AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('ALTER VIEW %s SET (security_invoker = true)', v);
    END LOOP;
END
$$;

-- With that, a view cannot show more than its tables' policies allow the
-- reader, so every view is readable by all three roles (one over admin-only
-- tables still refuses reps, with "permission denied" for the table).
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'salesmgmt'::regnamespace AND c.relkind = 'v'
         ORDER BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO salesmgmt_manager, salesmgmt_rep', v);
    END LOOP;
END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA salesmgmt TO salesmgmt_admin;
REVOKE EXECUTE ON FUNCTION salesmgmt._register_config_table(regclass, text),
    salesmgmt._managed_team_ids(bigint) FROM salesmgmt_admin;

