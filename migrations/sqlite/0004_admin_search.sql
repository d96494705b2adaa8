-- Back-office search over many users: email prefix by range on a plain index, email
-- substring through an FTS5 trigram index kept in step by triggers. The index carries the
-- user id itself (rowids of a table with a text key may change on VACUUM).

CREATE INDEX users_email ON users (email);
CREATE INDEX users_status_created ON users (status, created_at);
CREATE INDEX usage_events_at ON usage_events (at);

CREATE VIRTUAL TABLE users_email_search USING fts5 (email, user_id UNINDEXED, tokenize = 'trigram');
INSERT INTO users_email_search (email, user_id) SELECT email, id FROM users;

CREATE TRIGGER users_email_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_email_search (email, user_id) VALUES (new.email, new.id);
END;
-- Emails rarely change; the delete scans the index, which is acceptable for a rare event.
CREATE TRIGGER users_email_search_update AFTER UPDATE OF email ON users BEGIN
    DELETE FROM users_email_search WHERE user_id = old.id;
    INSERT INTO users_email_search (email, user_id) VALUES (new.email, new.id);
END;
