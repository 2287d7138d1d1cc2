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

CREATE FUNCTION on_card_event_burned() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    burned record;
BEGIN
    SELECT store_id INTO burned FROM burned_records
        WHERE uid = NEW.uid AND ((counter = NEW.counter AND tag = NEW.tag)
            OR (counter = NEW.prev_counter AND tag = NEW.prev_tag));
    IF FOUND THEN
        PERFORM flag(NEW.uid, 'HISTORY_FORKED', NEW.store_id, NEW.counter, jsonb_build_object(
            'burned_by_store_id', burned.store_id, 'request_id', NEW.request_id,
            'amount', NEW.amount, 'op', NEW.op, 'note', 'a record closed as not applied is back'));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER card_event_burned AFTER INSERT ON card_events
    FOR EACH ROW EXECUTE FUNCTION on_card_event_burned();
