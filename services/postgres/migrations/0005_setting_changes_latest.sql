-- The latest change of each setting (the "updated at" of every setting of
-- a page) is read from this index alone: max(id) per key.
CREATE INDEX setting_changes_latest ON setting_changes (account_id, integration, key, id);
