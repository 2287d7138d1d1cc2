-- The chain ledger's tables. Every per-card table is keyed by the card UID first, so that a
-- distributed PostgreSQL (Citus) can shard them by UID without a change to the SQL stores send;
-- stores, terminals, policy and the hotlist are small reference tables.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_owner') THEN
        CREATE ROLE ledger_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ledger_store') THEN
        CREATE ROLE ledger_store NOLOGIN;
    END IF;
END
$$;

CREATE SCHEMA ledger AUTHORIZATION ledger_owner;
SET LOCAL ROLE ledger_owner;
SET LOCAL search_path = ledger;

-- one row per store; its PostgreSQL login role is bound here (row-level security uses it)
CREATE TABLE stores (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    role_name name NOT NULL UNIQUE,
    name text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- the store PCs (one journal each) seen shipping for a store
CREATE TABLE terminals (
    store_id int NOT NULL REFERENCES stores,
    code text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, code)
);

-- the chain-wide truth per card: its newest committed record and what the card is
CREATE TABLE cards (
    uid text PRIMARY KEY,
    member_id text,
    last_counter int NOT NULL DEFAULT 0,
    last_tag text,
    balance bigint,          -- fen, after the newest record
    points bigint,
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'replaced')),
    generation int NOT NULL DEFAULT 0,
    replaced_by text,
    last_store_id int,
    last_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cards_by_member ON cards (member_id);

-- append-only: one row per committed record a store wrote (or issued); a re-sent event has
-- the same key and is ignored (INSERT ... ON CONFLICT DO NOTHING)
CREATE TABLE card_events (
    uid text NOT NULL,
    counter int NOT NULL,
    tag text NOT NULL,
    at timestamptz NOT NULL,            -- the store PC's commit time
    store_id int NOT NULL,
    terminal text NOT NULL,
    store_seq bigint NOT NULL,          -- the terminal's outbox sequence number
    request_id text NOT NULL,
    op text NOT NULL,
    prev_counter int NOT NULL,
    prev_tag text,
    amount bigint NOT NULL DEFAULT 0,   -- fen
    balance_before bigint,
    balance_after bigint,
    points_before bigint,
    points_after bigint,
    member_id text,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (uid, counter, tag, at)
) PARTITION BY RANGE (at);
CREATE INDEX card_events_by_counter ON card_events (uid, counter);
CREATE TABLE card_events_default PARTITION OF card_events DEFAULT;

-- what else a store reports: hotlisting, fraud refusals, replacements, unresolved intents
CREATE TABLE store_reports (
    store_id int NOT NULL,
    terminal text NOT NULL,
    store_seq bigint NOT NULL,
    kind text NOT NULL,
    uid text,
    member_id text,
    detail jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- the commit time too: a PC whose journal was replaced counts its sequence from 1 again
    PRIMARY KEY (store_id, terminal, store_seq, at)
);

-- versioned hotlist: a store pulls what changed since the version it has
CREATE TABLE hotlist (
    version bigserial PRIMARY KEY,
    uid text NOT NULL,
    action text NOT NULL CHECK (action IN ('add', 'remove')),
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE hotlist_current (
    uid text PRIMARY KEY,
    version bigint NOT NULL,
    reason text NOT NULL
);

-- divergences for a person to look at
CREATE TABLE review_queue (
    id bigserial PRIMARY KEY,
    uid text NOT NULL,
    reason text NOT NULL,
    store_id int,
    counter int,
    detail jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX review_open ON review_queue (status, created_at);
CREATE INDEX review_by_uid ON review_queue (uid);

-- the chain's policy: which flags put a card on the hotlist; the fastest plausible move
-- between two stores
CREATE TABLE policy (
    name text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO policy (name, value) VALUES
    ('hotlist_reasons', 'HISTORY_FORKED,COUNTER_ROLLBACK,REPLACED_CARD_USED,STORE_HOTLIST'),
    ('travel_min_s', '300');

-- monthly partitions of card_events (migrate keeps a year ahead; the default one catches
-- a store whose clock is far off)
CREATE FUNCTION ensure_month_partitions(first_month date, months int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    made int := 0;
    m date := date_trunc('month', first_month)::date;
    name text;
BEGIN
    FOR i IN 1..months LOOP
        name := format('card_events_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass('ledger.' || name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE ledger.%I PARTITION OF ledger.card_events FOR VALUES FROM (%L) TO (%L)',
                name, m::timestamptz, (m + interval '1 month')::timestamptz);
            made := made + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END
$$;
