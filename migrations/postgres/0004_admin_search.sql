-- Back-office search over many users: email prefix by range on a plain index, email
-- substring through a trigram index (pg_trgm ships with PostgreSQL).

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX users_email ON users (email);
CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_status_created ON users (status, created_at);
CREATE INDEX usage_events_at ON usage_events (at);
