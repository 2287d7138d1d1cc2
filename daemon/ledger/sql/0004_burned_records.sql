-- Records a store closed as not applied (the cashier gave the money back): such a record must
-- never appear on a card anywhere in the chain. A key-A attacker can hide a committed record
-- from one store (so it is refunded) and put it back before using the card at another.
SET LOCAL ROLE ledger_owner;
SET LOCAL search_path = ledger;

CREATE TABLE burned_records (
    uid text NOT NULL,
    counter int NOT NULL,
    tag text NOT NULL,
    store_id int NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (uid, counter, tag)
);
GRANT SELECT ON burned_records TO ledger_store;

CREATE FUNCTION on_not_applied() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    rec jsonb := NEW.detail -> 'record';
    used record;
BEGIN
    IF NEW.kind <> 'not_applied' OR NEW.uid IS NULL OR rec IS NULL OR rec ->> 'tag' IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO burned_records (uid, counter, tag, store_id, at)
        VALUES (NEW.uid, (rec ->> 'counter')::int, rec ->> 'tag', NEW.store_id, NEW.at)
        ON CONFLICT DO NOTHING;
    -- already used somewhere before this report arrived
    SELECT store_id, request_id INTO used FROM card_events
        WHERE uid = NEW.uid AND ((counter = (rec ->> 'counter')::int AND tag = rec ->> 'tag')
            OR (prev_counter = (rec ->> 'counter')::int AND prev_tag = rec ->> 'tag'))
        LIMIT 1;
    IF FOUND THEN
        PERFORM flag(NEW.uid, 'HISTORY_FORKED', used.store_id, (rec ->> 'counter')::int,
            jsonb_build_object('burned_tag', rec ->> 'tag', 'request_id', used.request_id,
                               'closed_at_store_id', NEW.store_id));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER store_report_not_applied AFTER INSERT ON store_reports
    FOR EACH ROW EXECUTE FUNCTION on_not_applied();

-- the per-event checks again, now with burned records, in one pass over this card's rows at
-- the event's counter (one trigger per event: ingest cost matters at a chain's lunch peak)
CREATE OR REPLACE FUNCTION on_card_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    c cards%ROWTYPE;
    other record;
    fork record;
    burned record;
    travel_min double precision;
    gap double precision;
BEGIN
    INSERT INTO terminals (store_id, code) VALUES (NEW.store_id, NEW.terminal)
        ON CONFLICT DO NOTHING;
    INSERT INTO cards (uid, member_id) VALUES (NEW.uid, NEW.member_id) ON CONFLICT DO NOTHING;
    SELECT * INTO c FROM cards WHERE uid = NEW.uid FOR UPDATE;  -- one card at a time
    IF NEW.op = 'issue' THEN  -- a (re)issued card starts a new history at counter 1
        UPDATE cards SET member_id = NEW.member_id, last_counter = NEW.counter,
            last_tag = NEW.tag, balance = NEW.balance_after, points = NEW.points_after,
            last_store_id = NEW.store_id, last_at = NEW.at, updated_at = now()
        WHERE uid = NEW.uid AND state = 'active';
        RETURN NULL;
    END IF;
    FOR other IN SELECT store_id, tag FROM card_events
        WHERE uid = NEW.uid AND counter = NEW.counter AND NOT (tag = NEW.tag AND at = NEW.at)
    LOOP
        IF other.tag = NEW.tag THEN  -- the same record again (re-sent with another time)
            RETURN NULL;
        END IF;
        fork := other;
    END LOOP;
    SELECT store_id INTO burned FROM burned_records
        WHERE uid = NEW.uid AND ((counter = NEW.counter AND tag = NEW.tag)
            OR (counter = NEW.prev_counter AND tag = NEW.prev_tag));
    IF FOUND THEN
        PERFORM flag(NEW.uid, 'HISTORY_FORKED', NEW.store_id, NEW.counter, jsonb_build_object(
            'burned_by_store_id', burned.store_id, 'request_id', NEW.request_id,
            'amount', NEW.amount, 'op', NEW.op, 'note', 'a record closed as not applied is back'));
    ELSIF fork IS NOT NULL THEN  -- two histories of one card: another record at this counter
        PERFORM flag(NEW.uid, 'HISTORY_FORKED', NEW.store_id, NEW.counter, jsonb_build_object(
            'tag', NEW.tag, 'other_tag', fork.tag, 'other_store_id', fork.store_id,
            'request_id', NEW.request_id, 'amount', NEW.amount, 'op', NEW.op));
    ELSIF NEW.prev_counter < c.last_counter THEN
        -- the card was used from an older state than the chain's newest
        PERFORM flag(NEW.uid, 'COUNTER_ROLLBACK', NEW.store_id, NEW.counter, jsonb_build_object(
            'card_counter', NEW.prev_counter, 'chain_counter', c.last_counter,
            'request_id', NEW.request_id, 'amount', NEW.amount, 'op', NEW.op));
    END IF;
    IF c.state = 'replaced' THEN
        PERFORM flag(NEW.uid, 'REPLACED_CARD_USED', NEW.store_id, NEW.counter, jsonb_build_object(
            'replaced_by', c.replaced_by, 'request_id', NEW.request_id, 'amount', NEW.amount,
            'op', NEW.op));
    END IF;
    IF c.last_store_id IS NOT NULL AND c.last_store_id <> NEW.store_id THEN
        SELECT value::double precision INTO travel_min FROM policy WHERE name = 'travel_min_s';
        gap := abs(extract(epoch FROM NEW.at - c.last_at));
        IF gap < coalesce(travel_min, 0) THEN
            PERFORM flag(NEW.uid, 'IMPOSSIBLE_TRAVEL', NEW.store_id, NEW.counter,
                jsonb_build_object('other_store_id', c.last_store_id,
                                   'seconds', round(gap::numeric, 3), 'request_id', NEW.request_id));
        END IF;
    END IF;
    IF NEW.counter > c.last_counter THEN
        UPDATE cards SET last_counter = NEW.counter, last_tag = NEW.tag,
            balance = NEW.balance_after, points = NEW.points_after,
            member_id = coalesce(NEW.member_id, member_id), last_store_id = NEW.store_id,
            last_at = NEW.at, updated_at = now()
        WHERE uid = NEW.uid;
    ELSIF c.last_at IS NULL OR NEW.at > c.last_at THEN
        UPDATE cards SET last_store_id = NEW.store_id, last_at = NEW.at WHERE uid = NEW.uid;
    END IF;
    RETURN NULL;
END
$$;
