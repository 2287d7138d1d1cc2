-- Chain-wide checks, run by the ledger itself as each event or report arrives (AFTER INSERT
-- triggers: a re-sent row that ON CONFLICT DO NOTHING skipped never fires them). The trigger
-- functions run as ledger_owner (SECURITY DEFINER): a store role may insert its events but
-- never write cards, the review queue or the hotlist itself.
SET LOCAL ROLE ledger_owner;
SET LOCAL search_path = ledger;

CREATE FUNCTION hotlist_add(p_uid text, p_reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM 1 FROM hotlist_current WHERE uid = p_uid;
    IF FOUND THEN
        RETURN;
    END IF;
    INSERT INTO hotlist (uid, action, reason) VALUES (p_uid, 'add', p_reason) RETURNING version INTO v;
    INSERT INTO hotlist_current (uid, version, reason) VALUES (p_uid, v, p_reason)
        ON CONFLICT (uid) DO NOTHING;
END
$$;

CREATE FUNCTION hotlist_remove(p_uid text, p_note text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
BEGIN
    DELETE FROM hotlist_current WHERE uid = p_uid;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO hotlist (uid, action, reason) VALUES (p_uid, 'remove', p_note);
    RETURN true;
END
$$;

-- one divergence: into the review queue and, when the policy names its reason, the hotlist
CREATE FUNCTION flag(p_uid text, p_reason text, p_store int, p_counter int, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    listed text;
    store_code text;
BEGIN
    INSERT INTO review_queue (uid, reason, store_id, counter, detail)
        VALUES (p_uid, p_reason, p_store, p_counter, p_detail);
    SELECT value INTO listed FROM policy WHERE name = 'hotlist_reasons';
    IF p_reason = ANY (string_to_array(coalesce(listed, ''), ',')) THEN
        SELECT code INTO store_code FROM stores WHERE id = p_store;
        PERFORM hotlist_add(p_uid, format('%s (seen at store %s)', p_reason, coalesce(store_code, '?')));
    END IF;
END
$$;

CREATE FUNCTION on_card_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    c cards%ROWTYPE;
    other record;
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
    PERFORM 1 FROM card_events
        WHERE uid = NEW.uid AND counter = NEW.counter AND tag = NEW.tag AND at <> NEW.at;
    IF FOUND THEN  -- the same record again (re-sent with another time): already counted
        RETURN NULL;
    END IF;
    -- two histories of one card: another record at this counter
    SELECT store_id, tag, at INTO other FROM card_events
        WHERE uid = NEW.uid AND counter = NEW.counter AND tag <> NEW.tag LIMIT 1;
    IF FOUND THEN
        PERFORM flag(NEW.uid, 'HISTORY_FORKED', NEW.store_id, NEW.counter, jsonb_build_object(
            'tag', NEW.tag, 'other_tag', other.tag, 'other_store_id', other.store_id,
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
    SELECT value::double precision INTO travel_min FROM policy WHERE name = 'travel_min_s';
    IF c.last_store_id IS NOT NULL AND c.last_store_id <> NEW.store_id THEN
        gap := abs(extract(epoch FROM NEW.at - c.last_at));
        IF gap < coalesce(travel_min, 0) THEN
            PERFORM flag(NEW.uid, 'IMPOSSIBLE_TRAVEL', NEW.store_id, NEW.counter,
                jsonb_build_object('other_store_id', c.last_store_id, 'seconds', round(gap::numeric, 3),
                                   'request_id', NEW.request_id));
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

CREATE TRIGGER card_event_checks AFTER INSERT ON card_events
    FOR EACH ROW EXECUTE FUNCTION on_card_event();

CREATE FUNCTION on_store_report() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ledger, pg_temp AS $$
DECLARE
    old_uid text;
    new_uid text;
BEGIN
    INSERT INTO terminals (store_id, code) VALUES (NEW.store_id, NEW.terminal)
        ON CONFLICT DO NOTHING;
    IF NEW.kind IN ('replace', 'replacement_learnt') THEN
        old_uid := NEW.detail ->> 'old_uid';
        new_uid := NEW.uid;
        IF old_uid IS NOT NULL THEN
            INSERT INTO cards (uid, member_id) VALUES (old_uid, NEW.member_id) ON CONFLICT DO NOTHING;
            UPDATE cards SET state = 'replaced', replaced_by = new_uid, updated_at = now()
                WHERE uid = old_uid;
            PERFORM hotlist_add(old_uid, format('replaced by %s', new_uid));
        END IF;
    ELSIF NEW.kind = 'hotlist' AND NEW.uid IS NOT NULL THEN
        PERFORM flag(NEW.uid, 'STORE_HOTLIST', NEW.store_id, NULL, NEW.detail);
    ELSIF NEW.kind = 'fraud' AND NEW.uid IS NOT NULL THEN
        INSERT INTO review_queue (uid, reason, store_id, detail)
            VALUES (NEW.uid, 'STORE_FRAUD', NEW.store_id, NEW.detail);
    ELSIF NEW.kind = 'pending_undetermined' AND NEW.uid IS NOT NULL THEN
        INSERT INTO review_queue (uid, reason, store_id, detail)
            VALUES (NEW.uid, 'OUTCOME_UNKNOWN', NEW.store_id, NEW.detail);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER store_report_checks AFTER INSERT ON store_reports
    FOR EACH ROW EXECUTE FUNCTION on_store_report();
