-- What a store may do: insert its own events and reports, read card state and the hotlist.
-- Nothing else: no UPDATE or DELETE anywhere, no other store's rows, no review queue.
-- Row-level security binds a row's store_id to the login role (never to a client setting).
SET LOCAL ROLE ledger_owner;
SET LOCAL search_path = ledger;

GRANT USAGE ON SCHEMA ledger TO ledger_store;
GRANT INSERT ON card_events, store_reports TO ledger_store;
GRANT SELECT ON cards, hotlist, hotlist_current TO ledger_store;
GRANT SELECT (id, code, role_name) ON stores TO ledger_store;

ALTER TABLE stores ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_store ON stores FOR SELECT TO ledger_store USING (role_name = current_user);

ALTER TABLE card_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE card_events FORCE ROW LEVEL SECURITY;
CREATE POLICY own_events ON card_events FOR INSERT TO ledger_store
    WITH CHECK (store_id = (SELECT id FROM ledger.stores WHERE role_name = current_user));
CREATE POLICY owner_all ON card_events TO ledger_owner USING (true) WITH CHECK (true);

ALTER TABLE store_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE store_reports FORCE ROW LEVEL SECURITY;
CREATE POLICY own_reports ON store_reports FOR INSERT TO ledger_store
    WITH CHECK (store_id = (SELECT id FROM ledger.stores WHERE role_name = current_user));
CREATE POLICY owner_all ON store_reports TO ledger_owner USING (true) WITH CHECK (true);

REVOKE ALL ON FUNCTION hotlist_add(text, text), hotlist_remove(text, text),
    flag(text, text, int, int, jsonb) FROM PUBLIC;
